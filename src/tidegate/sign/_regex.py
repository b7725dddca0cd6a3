"""Go regular expressions (RE2 syntax, as `regexp.MatchString` reads them) run with Python's `re`.

Flux and cosign take the `matchOIDCIdentity` and `--certificate-*-regexp` expressions as Go
regexps. Python's `re` reads most of them the same way, but not all: `$` matches before a final
newline in Python and only at the end of the text in Go, `\\d`/`\\w`/`\\s`/`\\b` are ASCII in Go,
Go has `\\z`, `\\pL`, `[[:alpha:]]`, `(?U)` and flags that may appear mid-pattern, and Python
accepts backreferences, lookarounds and possessive quantifiers that Go rejects. So a Go
expression is parsed here and rewritten into an equivalent Python one; what Go rejects raises
`ValueError`.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata

__all__ = ["go_search", "translate"]

# Go refuses repetition counts above this (regexp/syntax maxRepeat).
_MAX_REPEAT = 1000

_PERL_CLASSES = {
    "d": "0-9",
    "s": "\\t\\n\\f\\r ",
    "w": "0-9A-Za-z_",
}

_POSIX_CLASSES = {
    "alnum": "0-9A-Za-z",
    "alpha": "A-Za-z",
    "ascii": "\\x00-\\x7f",
    "blank": "\\t ",
    "cntrl": "\\x00-\\x1f\\x7f",
    "digit": "0-9",
    "graph": "!-~",
    "lower": "a-z",
    "print": " -~",
    "punct": "!-/:-@\\[-`{-~",
    "space": "\\t\\n\\v\\f\\r ",
    "upper": "A-Z",
    "word": "0-9A-Za-z_",
    "xdigit": "0-9A-Fa-f",
}

# Go's Unicode general categories (its `unicode.Categories`); scripts (\p{Greek}) have no
# table in Python's standard library and are refused rather than guessed.
_SUBCATEGORIES = {
    "C": "cfos",
    "L": "lmotu",
    "M": "cen",
    "N": "dlo",
    "P": "cdefios",
    "S": "ckmo",
    "Z": "lps",
}
_CATEGORIES = frozenset(
    [*_SUBCATEGORIES, *(major + sub for major, subs in _SUBCATEGORIES.items() for sub in subs)]
)

_FLAG_I = "i"
_FLAG_M = "m"
_FLAG_S = "s"
_FLAG_U = "U"


def _invalid(pattern: str, why: str) -> ValueError:
    return ValueError(f"invalid Go regular expression {pattern!r}: {why}")


def go_search(pattern: str, text: str) -> bool:
    """Whether the Go regular expression `pattern` matches anywhere in `text`.

    Same answer as Go's `regexp.MatchString(pattern, text)`: unanchored, RE2 syntax.
    Raises `ValueError` ("invalid Go regular expression …") for what Go does not compile.
    """
    return _compile(pattern).search(text) is not None


def translate(pattern: str) -> str:
    """The Python `re` pattern that matches what the Go pattern matches."""
    return _Translator(pattern).run()


@functools.lru_cache(maxsize=512)
def _compile(pattern: str) -> re.Pattern[str]:
    python = translate(pattern)
    try:
        return re.compile(python)
    except re.error as e:  # a gap in the translation, not a user error Go would accept
        raise _invalid(pattern, f"cannot be translated ({e})") from e


@functools.lru_cache(maxsize=64)
def _category_ranges(name: str) -> tuple[tuple[int, int], ...]:
    """Code point ranges of a Unicode general category (one letter = all its subcategories)."""
    ranges: list[tuple[int, int]] = []
    start = -1
    for cp in range(sys.maxunicode + 1):
        cat = unicodedata.category(chr(cp))
        inside = cat == name if len(name) == 2 else (cat[0] == name and cat != "Cn")
        if inside and start < 0:
            start = cp
        elif not inside and start >= 0:
            ranges.append((start, cp - 1))
            start = -1
    if start >= 0:
        ranges.append((start, sys.maxunicode))
    return tuple(ranges)


def _complement(ranges: tuple[tuple[int, int], ...]) -> tuple[tuple[int, int], ...]:
    out: list[tuple[int, int]] = []
    next_start = 0
    for lo, hi in ranges:
        if lo > next_start:
            out.append((next_start, lo - 1))
        next_start = hi + 1
    if next_start <= sys.maxunicode:
        out.append((next_start, sys.maxunicode))
    return tuple(out)


def _class_char(cp: int) -> str:
    return f"\\U{cp:08x}"


def _ranges_text(ranges: tuple[tuple[int, int], ...]) -> str:
    return "".join(
        _class_char(lo) if lo == hi else f"{_class_char(lo)}-{_class_char(hi)}" for lo, hi in ranges
    )


class _Translator:
    def __init__(self, pattern: str) -> None:
        self.pattern = pattern
        self.pos = 0
        self.out: list[str] = []
        self.flags: frozenset[str] = frozenset()
        # Per open group, the flags outside it, restored at its `)`.
        self.groups: list[frozenset[str]] = []
        self.names: set[str] = set()
        # Whether the last item can take a repetition operator, and whether it already has one.
        self.repeatable = False
        self.repeated = False

    def error(self, why: str) -> ValueError:
        return _invalid(self.pattern, why)

    def run(self) -> str:
        p = self.pattern
        while self.pos < len(p):
            c = p[self.pos]
            if c == "(":
                self.open_group()
            elif c == ")":
                self.close_group()
            elif c == "|":
                self.pos += 1
                self.emit_marker("|")
            elif c in "*+?":
                self.repeat(c, 1)
            elif c == "{" and self.try_counted_repeat():
                pass
            elif c == "[":
                self.atom(self.parse_class())
            elif c == ".":
                self.pos += 1
                self.atom("(?s:.)" if _FLAG_S in self.flags else "(?-s:.)")
            elif c == "^":
                self.pos += 1
                self.atom("(?m:^)" if _FLAG_M in self.flags else "(?:\\A)")
            elif c == "$":
                self.pos += 1
                self.atom("(?m:$)" if _FLAG_M in self.flags else "(?:\\Z)")
            elif c == "\\":
                self.escape()
            else:
                self.pos += 1
                self.literal(ord(c))
        if self.groups:
            raise self.error("missing closing )")
        return "".join(self.out)

    # -- output ------------------------------------------------------------------------------

    def atom(self, text: str) -> None:
        self.out.append(text)
        self.repeatable = True
        self.repeated = False

    def emit_marker(self, text: str) -> None:
        self.out.append(text)
        self.repeatable = False
        self.repeated = False

    def literal(self, cp: int) -> None:
        text = re.escape(chr(cp))
        self.atom(f"(?i:{text})" if _FLAG_I in self.flags and chr(cp).isalpha() else text)

    # -- groups and flags --------------------------------------------------------------------

    def open_group(self) -> None:
        p = self.pattern
        rest = p[self.pos :]
        if not rest.startswith("(?"):
            self.pos += 1
            self.push_group()
            return
        for prefix in ("(?P<", "(?<"):
            if rest.startswith(prefix) and not rest.startswith(("(?<=", "(?<!")):
                end = p.find(">", self.pos)
                if end < 0:
                    raise self.error("invalid named capture")
                name = p[self.pos + len(prefix) : end]
                if not name or not all(ch.isascii() and (ch.isalnum() or ch == "_") for ch in name):
                    raise self.error(f"invalid named capture {name!r}")
                if name in self.names:
                    raise self.error(f"duplicate capture group name {name!r}")
                self.names.add(name)
                self.pos = end + 1
                self.push_group()
                return
        # (?flags) or (?flags:re)
        i = self.pos + 2
        flags = set(self.flags)
        negate = False
        seen_flag = False
        while i < len(p):
            ch = p[i]
            if ch in "imsU":
                (flags.discard if negate else flags.add)(ch)
                seen_flag = True
            elif ch == "-":
                if negate:
                    raise self.error(f"invalid or unsupported Perl syntax {p[self.pos : i + 1]!r}")
                negate = True
                seen_flag = False
            elif ch in ":)":
                if (negate and not seen_flag) or (i == self.pos + 2 and ch == ")"):
                    raise self.error(f"missing flags in {p[self.pos : i + 1]!r}")
                self.pos = i + 1
                if ch == ":":
                    self.push_group()
                    self.flags = frozenset(flags)
                else:
                    # Go applies a bare flag group to the rest of the enclosing group, across `|`.
                    self.flags = frozenset(flags)
                    self.repeatable = False
                    self.repeated = False
                return
            else:
                raise self.error(
                    f"invalid or unsupported Perl syntax {p[self.pos : i + 1]!r} "
                    "(RE2 has no lookaround, atomic groups, comments or backreferences)"
                )
            i += 1
        raise self.error("missing closing )")

    def push_group(self) -> None:
        # Every group becomes non-capturing: only whether the text matches matters here.
        self.groups.append(self.flags)
        self.emit_marker("(?:")

    def close_group(self) -> None:
        if not self.groups:
            raise self.error("unexpected )")
        self.pos += 1
        self.flags = self.groups.pop()
        self.atom(")")

    # -- repetition --------------------------------------------------------------------------

    def repeat(self, op: str, length: int) -> None:
        """Emit repetition `op` for the `length` characters at `pos`, plus a lazy `?`."""
        text = self.pattern[self.pos : self.pos + length]
        if self.repeated:
            raise self.error(f"invalid nested repetition operator {text!r}")
        if not self.repeatable:
            raise self.error(f"missing argument to repetition operator {text!r}")
        self.pos += length
        lazy = False
        if self.pos < len(self.pattern) and self.pattern[self.pos] == "?":
            lazy = True
            self.pos += 1
        if _FLAG_U in self.flags:
            lazy = not lazy
        self.out.append(op + ("?" if lazy else ""))
        self.repeated = True

    def try_counted_repeat(self) -> bool:
        m = re.compile(r"\{([0-9]+)(,([0-9]*))?\}").match(self.pattern, self.pos)
        if m is None:
            return False  # Go reads a `{` that starts no valid count as a literal
        lo = int(m.group(1))
        hi = lo if m.group(2) is None else (int(m.group(3)) if m.group(3) else -1)
        if lo > _MAX_REPEAT or hi > _MAX_REPEAT or (hi >= 0 and hi < lo):
            raise self.error(f"invalid repeat count {m.group(0)!r}")
        op = f"{{{lo}}}" if m.group(2) is None else f"{{{lo},{hi if hi >= 0 else ''}}}"
        self.repeat(op, len(m.group(0)))
        return True

    # -- escapes -----------------------------------------------------------------------------

    def escape(self) -> None:
        p = self.pattern
        if self.pos + 1 >= len(p):
            raise self.error("trailing backslash at end of expression")
        c = p[self.pos + 1]
        if c == "A":
            self.pos += 2
            self.atom("(?:\\A)")
        elif c == "z":
            self.pos += 2
            self.atom("(?:\\Z)")
        elif c in "bB":
            self.pos += 2
            self.atom(f"(?a:\\{c})")
        elif c == "Q":
            end = p.find("\\E", self.pos + 2)
            literal = p[self.pos + 2 :] if end < 0 else p[self.pos + 2 : end]
            self.pos = len(p) if end < 0 else end + 2
            for ch in literal:
                self.literal(ord(ch))
        elif c in "dswDSW" or c in "pP":
            self.atom(self.wrap_class(self.class_escape()))
        else:
            self.literal(self.char_escape())

    def wrap_class(self, body: str) -> str:
        text = f"[{body}]"
        return f"(?i:{text})" if _FLAG_I in self.flags else text

    def class_escape(self) -> str:
        """A Perl (\\d) or Unicode (\\pL) class escape at `pos`, as class contents (no brackets)."""
        p = self.pattern
        c = p[self.pos + 1]
        if c in "dswDSW":
            self.pos += 2
            body = _PERL_CLASSES[c.lower()]
            return f"^{body}" if c.isupper() else body
        # \pN, \p{Name}, \p{^Name}, \PN …
        negate = c == "P"
        i = self.pos + 2
        if i >= len(p):
            raise self.error("invalid character class range '\\p'")
        if p[i] == "{":
            end = p.find("}", i)
            if end < 0:
                raise self.error(f"invalid character class range {p[self.pos :]!r}")
            name = p[i + 1 : end]
            self.pos = end + 1
        else:
            name = p[i]
            self.pos = i + 1
        if name.startswith("^"):
            negate = not negate
            name = name[1:]
        if name == "Any":
            ranges: tuple[tuple[int, int], ...] = ((0, sys.maxunicode),)
        elif name in _CATEGORIES:
            ranges = _category_ranges(name)
        else:
            raise self.error(
                f"unsupported Unicode class {name!r} (tidegate supports general categories only)"
            )
        if negate:
            ranges = _complement(ranges)
        return _ranges_text(ranges)

    def char_escape(self) -> int:
        """A single-character escape at `pos` (Go's parseEscape); returns the code point."""
        p = self.pattern
        c = p[self.pos + 1]
        # A lone digit would be a backreference, which RE2 lacks; two or three are octal.
        if c in "1234567" and (self.pos + 2 >= len(p) or p[self.pos + 2] not in "01234567"):
            raise self.error(f"invalid escape sequence '\\{c}' (no backreferences in RE2)")
        if c in "01234567":
            digits = c
            i = self.pos + 2
            while i < len(p) and len(digits) < 3 and p[i] in "01234567":
                digits += p[i]
                i += 1
            self.pos = i
            return int(digits, 8)
        if c == "x":
            i = self.pos + 2
            if i < len(p) and p[i] == "{":
                end = p.find("}", i)
                digits = p[i + 1 : end] if end > 0 else ""
                if not digits or not all(d in "0123456789abcdefABCDEF" for d in digits):
                    raise self.error("invalid escape sequence '\\x{'")
                value = int(digits, 16)
                if value > sys.maxunicode:
                    raise self.error(f"invalid escape sequence '\\x{{{digits}}}'")
                self.pos = end + 1
                return value
            digits = p[i : i + 2]
            if len(digits) != 2 or not all(d in "0123456789abcdefABCDEF" for d in digits):
                raise self.error(f"invalid escape sequence '\\x{digits}'")
            self.pos = i + 2
            return int(digits, 16)
        simple = {"a": 7, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11}
        if c in simple:
            self.pos += 2
            return simple[c]
        if ord(c) < 0x80 and not c.isalnum():
            self.pos += 2
            return ord(c)
        raise self.error(f"invalid escape sequence '\\{c}'")

    # -- bracketed classes -------------------------------------------------------------------

    def parse_class(self) -> str:
        p = self.pattern
        start = self.pos
        self.pos += 1
        negate = False
        if self.pos < len(p) and p[self.pos] == "^":
            negate = True
            self.pos += 1
        items: list[str] = []
        first = True
        while True:
            if self.pos >= len(p):
                raise self.error(f"missing closing ] in {p[start:]!r}")
            c = p[self.pos]
            if c == "]" and not first:
                self.pos += 1
                break
            first = False
            if p.startswith("[:", self.pos):
                end = p.find(":]", self.pos + 2)
                name = p[self.pos + 2 : end] if end > 0 else ""
                posix_negate = name.startswith("^")
                if end > 0 and name.lstrip("^") in _POSIX_CLASSES:
                    body = _POSIX_CLASSES[name.lstrip("^")]
                    self.pos = end + 2
                    items.append(f"[^{body}]" if posix_negate else body)
                    continue
                if end > 0:
                    raise self.error(f"invalid character class range {p[self.pos : end + 2]!r}")
            if c == "\\" and self.pos + 1 < len(p) and p[self.pos + 1] in "dswDSWpP":
                body = self.class_escape()
                items.append(f"[{body}]" if body.startswith("^") else body)
                continue
            lo = self.class_char()
            if p.startswith("-", self.pos) and not p.startswith("-]", self.pos):
                self.pos += 1
                hi = self.class_char()
                if hi < lo:
                    raise self.error(
                        f"invalid character class range {chr(lo)}-{chr(hi)!r}".replace("'", "")
                    )
                items.append(f"{_class_char(lo)}-{_class_char(hi)}")
            else:
                items.append(_class_char(lo))
        return self.render_class(items, negate)

    def class_char(self) -> int:
        p = self.pattern
        if self.pos >= len(p):
            raise self.error("missing closing ]")
        c = p[self.pos]
        if c == "\\":
            if self.pos + 1 >= len(p):
                raise self.error("trailing backslash at end of expression")
            return self.char_escape()
        self.pos += 1
        return ord(c)

    def render_class(self, items: list[str], negate: bool) -> str:
        """The class in Python syntax: a bracket, or an alternation if it has negated parts.

        Python has no union of sets, so `[\\Da]` becomes `(?:[a]|[^0-9])` and `[^\\Da]` a
        lookahead refusing that before any one character.
        """
        plain = "".join(i for i in items if not i.startswith("[^"))
        negated = [i for i in items if i.startswith("[^")]
        if not negated:
            text = f"[{'^' if negate else ''}{plain}]"
        else:
            union = "|".join(([f"[{plain}]"] if plain else []) + negated)
            text = f"(?:(?!{union})(?s:.))" if negate else f"(?:{union})"
        return f"(?i:{text})" if _FLAG_I in self.flags else text

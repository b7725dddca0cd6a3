"""Post-build variable substitution as Flux does it: `${var}` and the bash forms, with the
rules kustomize-controller applies to each built object.

    from tidegate import envsubst

    envsubst.substitute("replicas: ${replicas:=1}", {"replicas": "3"})   # 'replicas: 3'
    envsubst.substitute_object(obj, variables)                         # a new dict, or obj

`substitute` reproduces github.com/fluxcd/pkg/envsubst (Flux's fork of drone/envsubst),
quirks included: only the braced form is expanded (`$var` stays as it is), `$$` writes one
`$` (so `$${var}` gives `${var}`), an unknown variable is empty unless `strict`, and lengths
and offsets count UTF-8 bytes as Go does. The forms:

    ${var}  ${#var}  ${var^}  ${var^^}  ${var,}  ${var,,}  ${var:n}  ${var:n:len}
    ${var#glob}  ${var##glob}  ${var%glob}  ${var%%glob}
    ${var=default}  ${var:=default}  ${var:-default}  ${var:?default}  ${var:+default}
    ${var/old/new}  ${var//old/new}  ${var/#old/new}  ${var/%old/new}

Every default form means "the default when the value is empty" (envsubst does not follow
bash for `:?` and `:+`), and `${var-default}` is not one: it is a parse error. In globs, `*`
and `?` match `/` too.

`substitute_object` applies fluxcd/pkg's kustomize `SubstituteVariables` rules: objects
labelled or annotated `kustomize.toolkit.fluxcd.io/substitute: disabled` are left alone,
variables must be named `^[_[:alpha:]][_[:alpha:][:digit:]]*$`, the object's YAML (as
`kustomize build` prints it) is substituted only when a variable is defined (or `always`, for
`substituteStrategy: Always`), and the result is read back as sigs.k8s.io/yaml reads YAML, so
`replicas: ${n}` becomes a number.
"""

from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from typing import Any

# kustomize's own YAML writer and go-yaml v2 reader: the text Flux substitutes is
# `Resource.AsYAML()`, and it reads the result back with sigs.k8s.io/yaml's YAMLToJSON.
from tidegate.kustomize import KustomizeError, dump, parse_kustomization_yaml

__all__ = [
    "SUBSTITUTE_ANNOTATION",
    "SUBSTITUTE_DISABLED",
    "VARIABLE_NAME_PATTERN",
    "SubstitutionError",
    "VariableNotSet",
    "is_substitution_disabled",
    "post_build_variables",
    "substitute",
    "substitute_object",
    "validate_variable_names",
]

# The label or annotation that exempts an object from substitution, and its value.
SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute"
SUBSTITUTE_DISABLED = "disabled"
# The names kustomize-controller accepts for variables (POSIX classes, as Go's regexp reads
# them: ASCII only).
VARIABLE_NAME_PATTERN = "^[_[:alpha:]][_[:alpha:][:digit:]]*$"
_VARIABLE_NAME = re.compile(r"^[_A-Za-z][_A-Za-z0-9]*\Z")


class SubstitutionError(ValueError):
    """The text cannot be substituted: a malformed expression (`bad substitution`, `missing
    closing brace`, ...), a variable missing in strict mode, an invalid variable name, or a
    result that is not YAML. The message is Flux's."""


class VariableNotSet(SubstitutionError):
    """In strict mode, a variable without a default is not defined."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(f'variable not set (strict mode): "{name}"')


# -- text -------------------------------------------------------------------------------------


def substitute(text: str, variables: Mapping[str, str], *, strict: bool = False) -> str:
    """`text` with each `${...}` expression replaced, as fluxcd/pkg's `envsubst.Eval` does.

    An unknown variable reads as empty; with `strict`, using one without a default raises
    `VariableNotSet`. A malformed expression raises `SubstitutionError`.
    """
    if "$" not in text:
        # Nothing to expand and nothing to unescape; a NUL still ends the text, as in Go.
        return text.split("\0", 1)[0]
    out = _substitute_bytes(text.encode("utf-8", "surrogatepass"), variables, strict)
    return out.decode("utf-8", "replace")


def _substitute_bytes(data: bytes, variables: Mapping[str, str], strict: bool) -> bytes:
    """`substitute` on UTF-8 bytes, giving bytes: Go's strings, which slicing by byte
    offsets (`${var:1:2}` on `é`) can leave invalid."""
    nodes = _Parser(data).parse()

    def lookup(name: str) -> tuple[str, bool]:
        if strict:
            value = variables.get(name)
            return ("", False) if value is None else (value, True)
        return variables.get(name, ""), True

    return b"".join(_evaluate(node, lookup) for node in nodes)


# The expression tree: literal text, a function (`${param<name>args...}`) and a sequence.


@dataclasses.dataclass
class _Func:
    param: str = ""
    name: str = ""
    args: list[_Node] = dataclasses.field(default_factory=list)


_Node = bytes | _Func | list["_Node"]

# Scanner tokens and modes, as drone/envsubst's scanner has them.
_ILLEGAL, _EOF, _IDENT, _LBRACK, _RBRACK = range(5)
_SCAN_IDENT, _SCAN_LBRACK, _SCAN_RBRACK, _SCAN_ESCAPE = 1, 2, 4, 8
_ESCAPE_DOLLAR, _ESCAPE_BACKSLASH = 1, 2
_ESCAPE_ALL = _ESCAPE_DOLLAR | _ESCAPE_BACKSLASH
# Go's scanner reads NUL as its end-of-input rune, so a NUL ends the text.
_NUL = "\0"

_Accept = Callable[[str, int], bool]

_BAD_SUBSTITUTION = "bad substitution"
_MISSING_CLOSING_BRACE = "missing closing brace"
_PARSE_VARIABLE_NAME = "unable to parse variable name"
_PARSE_FUNC_SUBSTITUTION = "unable to parse substitution within function"
_PARSE_DEFAULT_FUNCTION = "unable to parse default function"


def _accept_rune(r: str, i: int) -> bool:
    return True


def _accept_ident(r: str, i: int) -> bool:
    # Go's unicode.IsLetter and unicode.IsDigit (Nd only), or '_'.
    return r.isalpha() or unicodedata.category(r) == "Nd" or r == "_"


def _accept_colon(r: str, i: int) -> bool:
    return r == ":"


def _accept_one_hash(r: str, i: int) -> bool:
    return r == "#" and i == 1


def _accept_not_closing(r: str, i: int) -> bool:
    return r != "}"


def _accept_hash_func(r: str, i: int) -> bool:
    return r == "#" and i < 3


def _accept_percent_func(r: str, i: int) -> bool:
    return r == "%" and i < 3


def _accept_default_func(r: str, i: int) -> bool:
    return (i == 1 and r == ":") or (i == 2 and r in "=-?+")


def _accept_replace_func(r: str, i: int) -> bool:
    return (i == 1 and r == "/") or (i == 2 and r in "/#%")


def _accept_one_equal(r: str, i: int) -> bool:
    return i == 1 and r == "="


def _accept_one_colon(r: str, i: int) -> bool:
    return i == 1 and r == ":"


def _reject_colon_close(r: str, i: int) -> bool:
    return r not in ":}"


def _accept_slash(r: str, i: int) -> bool:
    return r == "/"


def _accept_not_slash(r: str, i: int) -> bool:
    return r != "/"


def _accept_casing_func(r: str, i: int) -> bool:
    return r in ",^" and i < 3


def _decode_rune(data: bytes | bytearray, pos: int) -> tuple[str, int]:
    """The rune at `pos` and its width in bytes; an invalid byte is U+FFFD of width 1, as
    Go's utf8.DecodeRune has it."""
    first = data[pos]
    if first < 0x80:
        return chr(first), 1
    for width in (2, 3, 4):
        try:
            rune = bytes(data[pos : pos + width]).decode("utf-8")
        except UnicodeDecodeError:
            continue
        return rune, width
    return "\ufffd", 1


# The first `$` or NUL: in plain text, the only bytes the scanner does anything with.
_TEXT_STOP = re.compile(rb"[$\0]")


class _Parser:
    """drone/envsubst's scanner and recursive-descent parser, over the UTF-8 bytes of the
    text (offsets and widths are Go's)."""

    def __init__(self, data: bytes) -> None:
        self.buf = bytearray(data)
        self.pos = 0
        self.start = 0
        self.width = 0
        self.mode = 0
        self.escape_chars = 0
        self.accept: _Accept = _accept_rune

    # -- scanner --

    def read(self) -> str:
        if self.pos >= len(self.buf):
            self.width = 0
            return _NUL
        rune, self.width = _decode_rune(self.buf, self.pos)
        self.pos += self.width
        return rune

    def unread(self) -> None:
        self.pos -= self.width

    def skip(self) -> None:
        # Drop the byte just read (an escaping `$` or `\`), keeping the position.
        del self.buf[self.pos - 1]

    def peek(self) -> str:
        rune = self.read()
        self.unread()
        return rune

    def string(self) -> bytes:
        return bytes(self.buf[self.start : self.pos])

    def scan(self) -> int:
        self.start = self.pos
        r = self.read()
        if r == _NUL:
            return _EOF
        if self.scan_lbrack(r):
            return _LBRACK
        if self.scan_rbrack(r):
            return _RBRACK
        if self.scan_ident(r):
            return _IDENT
        return _ILLEGAL

    def scan_ident(self, r: str) -> bool:
        if not self.mode & _SCAN_IDENT:
            return False
        if self.scan_escaped(r):
            self.skip()
        elif not self.accept(r, self.pos - self.start):
            return False
        plain_text = self.accept is _accept_rune
        while True:
            if plain_text:
                # Everything but `$` and NUL is accepted as it is: jump to the next of those.
                found = _TEXT_STOP.search(self.buf, self.pos)
                self.pos = found.start() if found else len(self.buf)
            r = self.read()
            if r == _NUL:
                self.unread()
                break
            if self.scan_lbrack(r):
                self.unread()
                self.unread()
                break
            if self.scan_escaped(r):
                self.skip()
                continue
            if not self.accept(r, self.pos - self.start):
                self.unread()
                break
        return True

    def scan_lbrack(self, r: str) -> bool:
        if not self.mode & _SCAN_LBRACK:
            return False
        if r == "$":
            if self.read() == "{":
                return True
            self.unread()
        return False

    def scan_rbrack(self, r: str) -> bool:
        return bool(self.mode & _SCAN_RBRACK) and r == "}"

    def scan_escaped(self, r: str) -> bool:
        if not self.mode & _SCAN_ESCAPE:
            return False
        if r == "$" and self.escape_chars & _ESCAPE_DOLLAR and self.peek() == "$":
            return True
        return r == "\\" and bool(self.escape_chars & _ESCAPE_BACKSLASH) and self.peek() in "/\\"

    # -- parser --

    def parse(self) -> list[_Node]:
        """The text as a sequence of literal text and functions (drone's parseAny, which
        recurses once per token, as a loop)."""
        nodes: list[_Node] = []
        while True:
            self.accept = _accept_rune
            self.mode = _SCAN_IDENT | _SCAN_LBRACK | _SCAN_ESCAPE
            self.escape_chars = _ESCAPE_DOLLAR
            token = self.scan()
            if token == _IDENT:
                nodes.append(self.string())
            elif token == _LBRACK:
                nodes.append(self.parse_func())
            elif token == _EOF:
                return nodes
            else:
                raise SubstitutionError(_BAD_SUBSTITUTION)

    def parse_func(self) -> _Node:
        self.escape_chars = _ESCAPE_ALL
        if self.peek() == "#":
            return self.parse_len_func()
        self.accept = _accept_ident
        self.mode = _SCAN_IDENT
        if self.scan() != _IDENT:
            raise SubstitutionError(_PARSE_VARIABLE_NAME)
        name = self.string().decode("utf-8", "replace")
        following = self.peek()
        if following == ":":
            return self.parse_default_or_substr(name)
        if following == "=":
            return self.parse_default_func(name)
        if following in (",", "^"):
            return self.parse_casing_func(name)
        if following == "/":
            return self.parse_replace_func(name)
        if following == "#":
            return self.parse_remove_func(name, _accept_hash_func)
        if following == "%":
            return self.parse_remove_func(name, _accept_percent_func)
        self.accept = _accept_ident
        self.mode = _SCAN_RBRACK
        if self.scan() != _RBRACK:
            raise SubstitutionError(_MISSING_CLOSING_BRACE)
        return _Func(param=name)

    def parse_param(self, accept: _Accept, mode: int) -> _Node:
        self.accept = accept
        self.mode = mode | _SCAN_LBRACK
        token = self.scan()
        if token == _LBRACK:
            return self.parse_func()
        if token in (_IDENT, _RBRACK):
            return self.string()
        raise SubstitutionError(_PARSE_FUNC_SUBSTITUTION)

    def parse_default_or_substr(self, name: str) -> _Node:
        self.read()
        following = self.peek()
        # As in Go: steps back by the width of the rune peeked at, not of the colon.
        self.unread()
        if following in ("=", "-", "?", "+"):
            return self.parse_default_func(name)
        return self.parse_substr_func(name)

    def scan_name(self, accept: _Accept, error: str) -> str:
        self.accept = accept
        self.mode = _SCAN_IDENT
        if self.scan() != _IDENT:
            raise SubstitutionError(error)
        return self.string().decode("utf-8", "replace")

    def parse_substr_func(self, name: str) -> _Node:
        node = _Func(param=name, name=self.scan_name(_accept_one_colon, _BAD_SUBSTITUTION))
        node.args.append(self.parse_param(_reject_colon_close, _SCAN_IDENT))
        self.accept = _accept_colon
        self.mode = _SCAN_IDENT | _SCAN_RBRACK
        token = self.scan()
        if token == _RBRACK:
            return node
        if token != _IDENT:
            raise SubstitutionError(_BAD_SUBSTITUTION)
        node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))
        self.consume_rbrack()
        return node

    def parse_remove_func(self, name: str, accept: _Accept) -> _Node:
        node = _Func(param=name, name=self.scan_name(accept, _BAD_SUBSTITUTION))
        node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))
        self.consume_rbrack()
        return node

    def parse_replace_func(self, name: str) -> _Node:
        node = _Func(param=name, name=self.scan_name(_accept_replace_func, _BAD_SUBSTITUTION))
        node.args.append(self.parse_param(_accept_not_slash, _SCAN_IDENT | _SCAN_ESCAPE))
        self.scan_name(_accept_slash, _BAD_SUBSTITUTION)  # the delimiter
        if self.peek() == "}":
            # No replacement: `${var/old/}`.
            self.consume_rbrack()
            return node
        node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT | _SCAN_ESCAPE))
        self.consume_rbrack()
        return node

    def parse_default_func(self, name: str) -> _Node:
        accept = _accept_one_equal if self.peek() == "=" else _accept_default_func
        node = _Func(param=name, name=self.scan_name(accept, _PARSE_DEFAULT_FUNCTION))
        while self.peek() != "}":
            node.args.append(self.parse_param(_accept_not_closing, _SCAN_IDENT))
        self.consume_rbrack()
        return node

    def parse_casing_func(self, name: str) -> _Node:
        node = _Func(param=name, name=self.scan_name(_accept_casing_func, _BAD_SUBSTITUTION))
        self.consume_rbrack()
        return node

    def parse_len_func(self) -> _Node:
        operator = self.scan_name(_accept_one_hash, _BAD_SUBSTITUTION)
        param = self.scan_name(_accept_ident, _BAD_SUBSTITUTION)
        self.consume_rbrack()
        return _Func(param=param, name=operator)

    def consume_rbrack(self) -> None:
        self.mode = _SCAN_RBRACK
        if self.scan() != _RBRACK:
            raise SubstitutionError(_BAD_SUBSTITUTION)


# -- evaluation -------------------------------------------------------------------------------

# Operators that supply their own value for an unset variable: strict mode lets them be.
_DEFAULT_OPERATORS = frozenset({"-", "+", "=", "?", ":-", ":+", ":=", ":?"})


def _evaluate(node: _Node, lookup: Callable[[str], tuple[str, bool]]) -> bytes:
    if isinstance(node, bytes):
        return node
    if isinstance(node, list):
        return b"".join(_evaluate(child, lookup) for child in node)
    # The arguments first, all of them, as Go does (a missing variable in an unused default
    # is still an error in strict mode).
    args = [_evaluate(arg, lookup) for arg in node.args]
    value, exists = lookup(node.param)
    if not exists and node.name not in _DEFAULT_OPERATORS:
        raise VariableNotSet(node.param)
    return _function(node.name, len(args))(value.encode("utf-8", "surrogatepass"), args)


_Function = Callable[[bytes, list[bytes]], bytes]


def _function(name: str, count: int) -> _Function:
    if name == "#" and count == 0:
        return _length
    return _FUNCTIONS.get(name, _default)


def _length(s: bytes, args: list[bytes]) -> bytes:
    return str(len(s)).encode()


def _map_runes(s: bytes, change: Callable[[str], str], first_only: bool = False) -> bytes:
    """Case mapping rune by rune, as Go's unicode.ToLower/ToUpper: one rune to one rune, so
    a character Python would expand (`ß` to `SS`) stays as it is."""
    if not s:
        return s
    runes = _runes(s)
    limit = 1 if first_only else len(runes)
    for index in range(limit):
        mapped = change(runes[index])
        if len(mapped) == 1:
            runes[index] = mapped
    return "".join(runes).encode("utf-8", "surrogatepass")


def _lower(s: bytes, args: list[bytes]) -> bytes:
    return _map_runes(s, str.lower)


def _upper(s: bytes, args: list[bytes]) -> bytes:
    return _map_runes(s, str.upper)


def _lower_first(s: bytes, args: list[bytes]) -> bytes:
    return _map_runes(s, str.lower, first_only=True)


def _upper_first(s: bytes, args: list[bytes]) -> bytes:
    return _map_runes(s, str.upper, first_only=True)


def _default(s: bytes, args: list[bytes]) -> bytes:
    return s if s or not args else b"".join(args)


_INT64 = 1 << 63


def _atoi(text: bytes) -> int | None:
    """Go's strconv.Atoi: an optional sign and decimal digits, within int64."""
    if not re.fullmatch(rb"[+-]?[0-9]+", text):
        return None
    value = int(text)
    return value if -_INT64 <= value < _INT64 else None


def _substring(s: bytes, args: list[bytes]) -> bytes:
    position = _atoi(args[0])
    if position is None:
        return s  # bash gives the whole value for a position it cannot read
    if position < 0:
        position = max(len(s) + position, 0)
    if len(args) == 1:
        return s[position:]
    length = _atoi(args[1])
    if length is None:
        return s
    if length < 0:
        # A negative length counts back from the end: `${var:1:-1}` drops both ends.
        end = len(s) + length
        return b"" if end < position else s[position:end]
    return s[position : position + length]


def _replace(s: bytes, old: bytes, new: bytes, count: int) -> bytes:
    """Go's strings.Replace: an empty `old` matches before each rune and at the end."""
    if old:
        return s.replace(old, new, count)
    out = bytearray()
    done = 0
    for rune in [*_rune_bytes(s), b""]:
        if count < 0 or done < count:
            out += new
            done += 1
        out += rune
    return bytes(out)


def _replace_all(s: bytes, args: list[bytes]) -> bytes:
    if not args:
        return s
    return _replace(s, args[0], args[1] if len(args) > 1 else b"", -1)


def _replace_first(s: bytes, args: list[bytes]) -> bytes:
    if not args:
        return s
    return _replace(s, args[0], args[1] if len(args) > 1 else b"", 1)


def _replace_prefix(s: bytes, args: list[bytes]) -> bytes:
    if len(args) != 2:
        return s
    return _replace(s, args[0], args[1], 1) if s.startswith(args[0]) else s


def _replace_suffix(s: bytes, args: list[bytes]) -> bytes:
    if len(args) != 2:
        return s
    if s.endswith(args[0]):
        return s[: len(s) - len(args[0])] + args[1]
    return s


def _trim_shortest_prefix(s: bytes, args: list[bytes]) -> bytes:
    return _trim_shortest(s, args[0]) if args else s


def _trim_longest_prefix(s: bytes, args: list[bytes]) -> bytes:
    return _trim_longest(s, args[0]) if args else s


def _trim_shortest_suffix(s: bytes, args: list[bytes]) -> bytes:
    if not args:
        return s
    return _reverse(_trim_shortest(_reverse(s), _reverse(args[0])))


def _trim_longest_suffix(s: bytes, args: list[bytes]) -> bytes:
    if not args:
        return s
    return _reverse(_trim_longest(_reverse(s), _reverse(args[0])))


def _trim_shortest(s: bytes, pattern: bytes) -> bytes:
    shortest = b""
    for i in range(len(s)):
        try:
            matched = _match(pattern, s[: len(s) - i])
        except _BadPattern:
            return s
        if matched:
            shortest = s[: len(s) - i]
    return s[len(shortest) :] if shortest else s


def _trim_longest(s: bytes, pattern: bytes) -> bytes:
    for i in range(len(s)):
        try:
            matched = _match(pattern, s[: len(s) - i])
        except _BadPattern:
            return s
        if matched:
            return s[len(s) - i :]
    return s


def _runes(s: bytes) -> list[str]:
    """Go's []rune(s): invalid bytes become U+FFFD."""
    runes = []
    pos = 0
    while pos < len(s):
        rune, width = _decode_rune(s, pos)
        runes.append(rune)
        pos += width
    return runes


def _rune_bytes(s: bytes) -> list[bytes]:
    """The UTF-8 sequences of `s`, each invalid byte on its own."""
    pieces = []
    pos = 0
    while pos < len(s):
        _, width = _decode_rune(s, pos)
        pieces.append(s[pos : pos + width])
        pos += width
    return pieces


def _reverse(s: bytes) -> bytes:
    return "".join(reversed(_runes(s))).encode("utf-8", "surrogatepass")


_FUNCTIONS: dict[str, _Function] = {
    ",": _lower_first,
    ",,": _lower,
    "^": _upper_first,
    "^^": _upper,
    "#": _trim_shortest_prefix,
    "##": _trim_longest_prefix,
    "%": _trim_shortest_suffix,
    "%%": _trim_longest_suffix,
    ":": _substring,
    "/#": _replace_prefix,
    "/%": _replace_suffix,
    "/": _replace_first,
    "//": _replace_all,
}


# -- globs: envsubst's copy of Go's path.Match, where `*` and `?` also match `/` ---------------


class _BadPattern(Exception):
    pass


def _match(pattern: bytes, name: bytes) -> bool:
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            return True  # a trailing star matches the rest, slashes included
        rest, ok = _match_chunk(chunk, name)
        if ok and (not rest or pattern):
            name = rest
            continue
        if star:
            for i in range(len(name)):
                rest, ok = _match_chunk(chunk, name[i + 1 :])
                if ok:
                    if not pattern and rest:
                        continue  # the last chunk must consume the name
                    name = rest
                    break
            else:
                return False
            continue
        return False
    return not name


def _scan_chunk(pattern: bytes) -> tuple[bool, bytes, bytes]:
    star = False
    while pattern[:1] == b"*":
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == 0x5C:  # backslash
            if i + 1 < len(pattern):
                i += 1
        elif c == 0x5B:  # [
            in_range = True
        elif c == 0x5D:  # ]
            in_range = False
        elif c == 0x2A and not in_range:  # *
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _match_chunk(chunk: bytes, s: bytes) -> tuple[bytes, bool]:
    """Whether `chunk` (no stars) matches the start of `s`, and what of `s` is left.
    Raises `_BadPattern` for a malformed chunk, when it gets that far."""
    while chunk:
        if not s:
            return b"", False
        c = chunk[0]
        if c == 0x5B:  # [ a class
            rune, width = _decode_rune(s, 0)
            s = s[width:]
            chunk = chunk[1:]
            negated = chunk[:1] == b"^"
            if negated:
                chunk = chunk[1:]
            matched = False
            ranges = 0
            while True:
                if chunk[:1] == b"]" and ranges > 0:
                    chunk = chunk[1:]
                    break
                low, chunk = _get_escaped(chunk)
                high = low
                if chunk[:1] == b"-":
                    high, chunk = _get_escaped(chunk[1:])
                if low <= rune <= high:
                    matched = True
                ranges += 1
            if matched == negated:
                return b"", False
        elif c == 0x3F:  # ? any one rune
            _, width = _decode_rune(s, 0)
            s = s[width:]
            chunk = chunk[1:]
        else:
            if c == 0x5C:  # backslash: the next byte literally
                chunk = chunk[1:]
                if not chunk:
                    raise _BadPattern
            if chunk[0] != s[0]:
                return b"", False
            s = s[1:]
            chunk = chunk[1:]
    return s, True


def _get_escaped(chunk: bytes) -> tuple[str, bytes]:
    if not chunk or chunk[:1] in (b"-", b"]"):
        raise _BadPattern
    if chunk[:1] == b"\\":
        chunk = chunk[1:]
        if not chunk:
            raise _BadPattern
    rune, width = _decode_rune(chunk, 0)
    rest = chunk[width:]
    if (rune == "\ufffd" and width == 1) or not rest:
        raise _BadPattern
    return rune, rest


# -- objects ----------------------------------------------------------------------------------


def is_substitution_disabled(obj: Mapping[str, Any]) -> bool:
    """Whether the object opts out: labelled or annotated `kustomize.toolkit.fluxcd.io/
    substitute: disabled`."""
    metadata = obj.get("metadata") or {}
    for field in ("labels", "annotations"):
        values = metadata.get(field) or {}
        if values.get(SUBSTITUTE_ANNOTATION) == SUBSTITUTE_DISABLED:
            return True
    return False


def validate_variable_names(variables: Iterable[str]) -> None:
    """Raise `SubstitutionError` for the first name kustomize-controller refuses."""
    for name in variables:
        if not _VARIABLE_NAME.match(name):
            raise SubstitutionError(
                f"'{name}' var name is invalid, must match '{VARIABLE_NAME_PATTERN}'"
            )


def post_build_variables(
    sources: Iterable[Mapping[str, str]], substitute: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The variables of `spec.postBuild`: the data of each `substituteFrom` object in order
    (later ones win), then the inline `substitute` map, which wins over all. Newlines are
    removed from every value, as kustomize-controller does. Secret data must be decoded."""
    variables: dict[str, str] = {}
    for source in sources:
        for name, value in source.items():
            variables[name] = value.replace("\n", "")
    for name, value in (substitute or {}).items():
        variables[name] = value.replace("\n", "")
    return variables


def substitute_object(
    obj: dict[str, Any],
    variables: Mapping[str, str],
    *,
    strict: bool = False,
    always: bool = False,
) -> dict[str, Any]:
    """The object with its variables substituted, as kustomize-controller does after a build
    for a Kustomization that has `spec.postBuild` (without one, nothing is substituted).

    `obj` itself comes back when it opts out (`kustomize.toolkit.fluxcd.io/substitute:
    disabled`), or when no variable is defined and not `always`. Otherwise its YAML is
    substituted and read back (YAML 1.1, as sigs.k8s.io/yaml reads it), giving a new dict.
    Raises `SubstitutionError` with Flux's message, e.g. `envsubst error: variable
    substitution failed: variable not set (strict mode): "region"`.
    """
    if is_substitution_disabled(obj):
        return obj
    if not variables and not always:
        return obj
    try:
        validate_variable_names(variables)
        try:
            text = substitute(dump(obj), variables, strict=strict)
        except SubstitutionError as exc:
            raise SubstitutionError(f"variable substitution failed: {exc}") from exc
        try:
            result = parse_kustomization_yaml(text)
        except KustomizeError as exc:
            raise SubstitutionError(f"YAMLToJSON: {exc}") from exc
    except SubstitutionError as exc:
        # The cause (a `VariableNotSet`, say) stays reachable as `__cause__`.
        raise SubstitutionError(f"envsubst error: {exc}") from (exc.__cause__ or exc)
    if not isinstance(result, dict):
        raise SubstitutionError(
            f"envsubst error: the substituted object is not a mapping: {text.strip()!r}"
        )
    return result

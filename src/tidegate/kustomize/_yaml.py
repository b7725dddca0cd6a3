"""YAML in and out, as kustomize reads and prints it.

Reading follows go-yaml v3, which kustomize (kyaml) parses resources with: `yes`/`on` stay
strings, `0x1F` and `017` are integers, unquoted timestamps become RFC 3339 strings.
Kustomization files go through go-yaml v2 (YAML 1.1: `yes` is a boolean).

Printing follows what `kustomize build` does with each object: JSON (encoding/json), read
back and printed by go-yaml v2 (sigs.k8s.io/yaml JSONToYAML). So keys come out in go-yaml v2's
"natural" order (`f9` before `f10`), floats as Go formats them, strings quoted exactly where
go-yaml v2 quotes them, lines wrapped at 80 columns. `_Emitter` is a port of the parts of
go-yaml v2's emitter (itself libyaml's) that such documents reach.
"""

from __future__ import annotations

import calendar
import copy
import math
import re
from collections.abc import Callable, Iterable
from functools import cmp_to_key
from typing import Any

import yaml

from ._errors import KustomizeError

__all__ = [
    "MalformedYAML",
    "dump",
    "dump_all",
    "parse_documents",
    "parse_kustomization_yaml",
    "parse_yaml",
    "split_documents",
]


class MalformedYAML(KustomizeError):
    """The text is not YAML; the message is go-yaml's (`yaml: line 5: did not find ...`)."""


# ---------------------------------------------------------------------------------------------
# Plain scalars: what an unquoted value means (go-yaml's resolve())

_PLAIN_TAG = "tag:tidegate,plain"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_DROPPED_TAG = "tag:tidegate,dropped"

_COMMON_MAP: dict[str, Any] = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
    "": None,
    "~": None,
    "null": None,
    "Null": None,
    "NULL": None,
    ".nan": math.nan,
    ".NaN": math.nan,
    ".NAN": math.nan,
    ".inf": math.inf,
    ".Inf": math.inf,
    ".INF": math.inf,
    "+.inf": math.inf,
    "+.Inf": math.inf,
    "+.INF": math.inf,
    "-.inf": -math.inf,
    "-.Inf": -math.inf,
    "-.INF": -math.inf,
}
# go-yaml v2 (YAML 1.1) also reads these as booleans.
_V2_MAP: dict[str, Any] = {
    **_COMMON_MAP,
    **dict.fromkeys(["y", "Y", "yes", "Yes", "YES", "on", "On", "ON"], True),
    **dict.fromkeys(["n", "N", "no", "No", "NO", "off", "Off", "OFF"], False),
}
_MISSING = object()
_NULL_KEYS = frozenset(["~", "null", "Null", "NULL"])

_INT_RE = re.compile(r"([-+]?)(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_YAML_STYLE_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_DOT_FLOAT = re.compile(r"\.[0-9]+([eE][-+]?[0-9]+)?")
_BASE60_FLOAT = re.compile(r"[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?")
_INT64_MIN, _INT64_MAX, _UINT64_MAX = -(2**63), 2**63 - 1, 2**64 - 1


def _go_parse_int(text: str) -> int | None:
    """strconv.ParseInt(text, 0, 64), falling back to ParseUint: None where both fail."""
    match = _INT_RE.fullmatch(text)
    if match is None:
        return None
    sign, digits = match.groups()
    if len(digits) > 1 and digits[0] == "0" and digits[1] in "xXoObB":
        value = int(digits[2:], {"x": 16, "o": 8, "b": 2}[digits[1].lower()])
    elif len(digits) > 1 and digits[0] == "0":
        value = int(digits[1:], 8)
    else:
        value = int(digits)
    if sign == "-":
        value = -value
    if _INT64_MIN <= value <= _INT64_MAX or (not sign and value <= _UINT64_MAX):
        return value
    return None


def _resolve_number(text: str) -> Any:
    """Ints, floats and timestamps for plain scalars starting with a digit or a sign."""
    stamp = _parse_timestamp(text)
    if stamp is not None:
        return stamp
    plain = text.replace("_", "")
    number = _go_parse_int(plain)
    if number is not None:
        return number
    if _YAML_STYLE_FLOAT.fullmatch(plain):
        value = float(plain)
        if not math.isinf(value):  # ParseFloat's ErrRange: go-yaml keeps the string
            return value
    return text


def _resolve_v3(text: str) -> Any:
    """The value go-yaml v3 decodes an unquoted scalar to (timestamps as RFC 3339 text)."""
    if not text:
        return None
    first = text[0]
    if first in "yYnNtTfFoO~.+-0123456789":
        found = _COMMON_MAP.get(text, _MISSING)
        if found is not _MISSING:
            return found
        if first == ".":
            if _DOT_FLOAT.fullmatch(text):
                value = float(text)
                if not math.isinf(value):
                    return value
            return text
        if first in "+-0123456789":
            return _resolve_number(text)
    return text


def _resolve_v2(text: str) -> Any:
    """The value go-yaml v2 decodes an unquoted scalar to (timestamps stay strings)."""
    if not text:
        return None
    first = text[0]
    if first in "yYnNtTfFoO~.+-0123456789":
        found = _V2_MAP.get(text, _MISSING)
        if found is not _MISSING:
            return found
        if first == ".":
            if _DOT_FLOAT.fullmatch(text):
                value = float(text)
                if not math.isinf(value):
                    return value
            return text
        if first in "+-0123456789":
            if _parse_timestamp(text) is not None:
                return text
            return _resolve_number(text)
    return text


def _needs_quotes(text: str) -> bool:
    """go-yaml v2's encoder: a string that would read back as something else is quoted."""
    if not text:
        return True
    first = text[0]
    if first not in "yYnNtTfFoO~.+-0123456789":
        return False
    if text in _V2_MAP:
        return True
    if first == ".":
        return bool(_DOT_FLOAT.fullmatch(text)) and not math.isinf(float(text))
    if first in "+-0123456789":
        if ":" in text and _BASE60_FLOAT.fullmatch(text):
            return True
        return _resolve_number(text) is not text
    return False


# ---------------------------------------------------------------------------------------------
# Timestamps, as Go's time.Parse reads go-yaml's four layouts and encoding/json prints them

_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _getnum(text: str, pos: int) -> tuple[int, int] | None:
    """time.getnum(value, false): one or two digits."""
    if pos >= len(text) or not "0" <= text[pos] <= "9":
        return None
    if pos + 1 < len(text) and "0" <= text[pos + 1] <= "9":
        return int(text[pos : pos + 2]), pos + 2
    return int(text[pos]), pos + 1


def _parse_timestamp(text: str) -> str | None:
    """go-yaml's parseTimestamp, formatted as time.Time's MarshalJSON (RFC 3339, nanoseconds)."""
    if len(text) < 6 or text[4] != "-" or not text[:4].isdigit() or not text[:4].isascii():
        return None
    year = int(text[:4])
    got = _getnum(text, 5)
    if got is None:
        return None
    month, pos = got
    if pos >= len(text) or text[pos] != "-":
        return None
    got = _getnum(text, pos + 1)
    if got is None:
        return None
    day, pos = got
    if not 1 <= month <= 12:
        return None
    hour = minute = second = nanos = 0
    offset: int | None = None
    if pos < len(text):
        separator = text[pos]
        if separator not in "Tt ":
            return None
        fields = []
        pos += 1
        for index in range(3):
            if index:
                if pos >= len(text) or text[pos] != ":":
                    return None
                pos += 1
            got = _getnum(text, pos)
            if got is None:
                return None
            value, pos = got
            fields.append(value)
        hour, minute, second = fields
        if hour > 23 or minute > 59 or second > 59:
            return None
        if pos + 1 < len(text) and text[pos] in ".," and "0" <= text[pos + 1] <= "9":
            end = pos + 1
            while end < len(text) and "0" <= text[end] <= "9":
                end += 1
            digits = text[pos + 1 : end][:9]
            nanos = int(digits) * 10 ** (9 - len(digits))
            pos = end
        if separator in "Tt":
            if pos < len(text) and text[pos] == "Z":
                offset = 0
                pos += 1
            else:
                zone = text[pos : pos + 6]
                if (
                    len(zone) < 6
                    or zone[0] not in "+-"
                    or zone[3] != ":"
                    or not (zone[1:3] + zone[4:6]).isdigit()
                    or not zone.isascii()
                ):
                    return None
                hours, minutes = int(zone[1:3]), int(zone[4:6])
                if hours > 24 or minutes > 60:
                    return None
                offset = (hours * 60 + minutes) * 60 * (-1 if zone[0] == "-" else 1)
                pos += 6
        if pos != len(text):
            return None
    days = _DAYS[month - 1] + (1 if month == 2 and calendar.isleap(year) else 0)
    if not 1 <= day <= days:
        return None
    stamp = f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}"
    if nanos:
        stamp += "." + f"{nanos:09d}".rstrip("0")
    if not offset:
        return stamp + "Z"
    sign = "-" if offset < 0 else "+"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{stamp}{sign}{hours:02d}:{minutes:02d}"


# ---------------------------------------------------------------------------------------------
# Reading


def _line_of(error: yaml.MarkedYAMLError) -> int:
    """The line go-yaml names in its messages (its parser's context line, 0-based, else the
    problem's; scanner errors count one more)."""
    scanner = isinstance(error, yaml.scanner.ScannerError)
    for mark in (error.context_mark, error.problem_mark):
        if mark is not None and mark.line != 0:
            return int(mark.line) + (1 if scanner else 0)
    return 0


def _go_yaml_message(error: yaml.YAMLError) -> str:
    if isinstance(error, yaml.reader.ReaderError):
        return "yaml: control characters are not allowed"
    if isinstance(error, yaml.MarkedYAMLError):
        line = _line_of(error)
        where = f"line {line}: " if line else ""
        return f"yaml: {where}{error.problem or 'unknown problem parsing YAML content'}"
    return f"yaml: {error}"


class _MergeError(yaml.YAMLError):
    pass


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: str, line: int, first: int) -> None:
        super().__init__(
            f"line {line}: mapping key {_go_quote(key)} already defined at line {first}"
        )


def _go_quote(text: str) -> str:
    """Go's %q for the common case."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{escaped}"'


def _check_duplicates(node: yaml.MappingNode) -> None:
    """go-yaml v3 refuses a key given twice in one mapping."""
    seen: dict[str, int] = {}
    for key_node, _ in node.value:
        if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _MERGE_TAG:
            continue
        line = key_node.start_mark.line + 1
        first = seen.setdefault(key_node.value, line)
        if first is not line:
            raise _DuplicateKey(key_node.value, line, first)


class ScalarTexts(dict[str, Any]):
    """A mapping that remembers how its non-string scalars were written (`1.50`, `0x1F`,
    `True`): kustomize rewrites annotations from that text at the end of a build."""

    texts: dict[str, str]


def _with_scalar_texts(value: dict[str, Any], node: yaml.Node) -> dict[str, Any]:
    if not isinstance(node, yaml.MappingNode):
        return value
    texts = {
        key.value: item.value
        for key, item in node.value
        if isinstance(key, yaml.ScalarNode)
        and isinstance(item, yaml.ScalarNode)
        and not isinstance(value.get(key.value), str)
    }
    if not texts:
        return value
    remembered = ScalarTexts(value)
    remembered.texts = texts
    return remembered


class _Loader(yaml.CSafeLoader):
    """libyaml's parser with go-yaml's meaning for plain scalars and string keys."""

    _resolve_plain: Callable[[str], Any] = staticmethod(_resolve_v3)
    _strict_keys = True

    def resolve(self, kind: Any, value: Any, implicit: Any) -> Any:
        if kind is yaml.ScalarNode:
            if value == "<<":  # go-yaml merges at plain `<<` keys; kyaml drops quoted ones
                return _MERGE_TAG if implicit[0] else _DROPPED_TAG
            if implicit[0]:
                return _PLAIN_TAG
        return super().resolve(kind, value, implicit)  # type: ignore[no-untyped-call]

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        # As PyYAML's: keys of the mapping win over merged ones, earlier merged maps over
        # later ones.
        merged: list[tuple[yaml.Node, yaml.Node]] = []
        own: list[tuple[yaml.Node, yaml.Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _DROPPED_TAG:
                continue
            if key_node.tag != _MERGE_TAG:
                own.append((key_node, value_node))
            elif isinstance(value_node, yaml.MappingNode):
                self.flatten_mapping(value_node)
                merged[:0] = value_node.value
            elif isinstance(value_node, yaml.SequenceNode) and all(
                isinstance(sub, yaml.MappingNode) for sub in value_node.value
            ):
                for sub in reversed(value_node.value):
                    self.flatten_mapping(sub)
                    merged.extend(sub.value)
            else:
                raise _MergeError()
        if merged:
            node.value = merged + own
        elif len(own) != len(node.value):
            node.value = own

    def construct_plain(self, node: yaml.ScalarNode) -> Any:
        return self._resolve_plain(node.value)

    def construct_binary(self, node: yaml.ScalarNode) -> Any:
        data = super().construct_yaml_binary(node)
        return data.decode("utf-8", "replace")

    def construct_unknown(self, suffix: str, node: yaml.Node) -> Any:
        # go-yaml keeps the data of custom tags (`!Ref x`) and drops the tag.
        if isinstance(node, yaml.MappingNode):
            return self.construct_yaml_map_now(node)
        if isinstance(node, yaml.SequenceNode):
            return self.construct_sequence(node, deep=True)
        return node.value

    def construct_yaml_map_now(self, node: yaml.MappingNode) -> dict[str, Any]:
        return self.construct_mapping(node, deep=True)

    def construct_mapping(  # type: ignore[override]
        self, node: yaml.MappingNode, deep: bool = False
    ) -> dict[str, Any]:
        if self._strict_keys:
            _check_duplicates(node)
        self.flatten_mapping(node)
        mapping: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode):
                key = key_node.value
                if key_node.tag == _PLAIN_TAG and key in _NULL_KEYS:
                    key = ""
            else:
                raise yaml.constructor.ConstructorError(
                    None, None, "invalid map key: a key must be a scalar", key_node.start_mark
                )
            value = self.construct_object(value_node, deep=deep)
            if key == "annotations" and isinstance(value, dict):
                value = _with_scalar_texts(value, value_node)
            mapping[key] = value
        return mapping

    def construct_yaml_map(self, node: yaml.MappingNode) -> Any:
        data: dict[str, Any] = {}
        yield data
        data.update(self.construct_mapping(node, deep=True))


_Loader.add_constructor(_PLAIN_TAG, _Loader.construct_plain)
_Loader.add_constructor("tag:yaml.org,2002:binary", _Loader.construct_binary)
_Loader.add_constructor("tag:yaml.org,2002:map", _Loader.construct_yaml_map)
_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_plain)
_Loader.add_multi_constructor("", _Loader.construct_unknown)


class _V2Loader(_Loader):
    """go-yaml v2 (YAML 1.1), as sigs.k8s.io/yaml reads kustomization files."""

    _resolve_plain = staticmethod(_resolve_v2)
    _strict_keys = False


def _dealias(value: Any) -> Any:
    """Aliases (`*ref`) load as shared objects; give every place its own copy, as kyaml does."""
    seen: set[int] = set()

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            if id(node) in seen:
                return copy.deepcopy(node)
            seen.add(id(node))
            for key, child in node.items():
                if isinstance(child, dict | list):
                    node[key] = walk(child)
        elif isinstance(node, list):
            if id(node) in seen:
                return copy.deepcopy(node)
            seen.add(id(node))
            for index, child in enumerate(node):
                if isinstance(child, dict | list):
                    node[index] = walk(child)
        return node

    return walk(value)


def _load_all(text: str, loader: type[_Loader]) -> list[Any]:
    try:
        documents = list(yaml.load_all(text, Loader=loader))
    except _DuplicateKey as exc:
        raise MalformedYAML(f"yaml: unmarshal errors:\n  {exc}") from None
    except _MergeError:
        raise KustomizeError("map merge requires map or sequence of maps as the value") from None
    except yaml.YAMLError as exc:
        raise MalformedYAML(_go_yaml_message(exc)) from None
    if "&" in text:
        documents = [_dealias(document) for document in documents]
    return documents


def parse_yaml(text: str, source: str = "") -> Any:
    """One YAML document, read as kustomize reads resources and patches (go-yaml v3).

    Raises `MalformedYAML` with go-yaml's message, and ` in File: <source>` when given.
    """
    try:
        documents = _load_all(text, _Loader)
    except MalformedYAML as exc:
        raise MalformedYAML(f"{exc} in File: {source}" if source else str(exc)) from None
    documents = [d for d in documents if d is not None]
    if len(documents) > 1:
        raise MalformedYAML(f"expected one YAML document in '{source}', found {len(documents)}")
    return documents[0] if documents else None


_SEPARATOR = re.compile(r"\n---.*\n")


def split_documents(text: str) -> list[str]:
    """Documents of a stream, split as kyaml splits them: at every line starting with `---`
    (whatever follows on the line must be a comment), after turning CRLF into LF."""
    text = text.replace("\r\n", "\n")
    if not text:
        return []
    pieces: list[str] = []
    previous = 0
    for match in _SEPARATOR.finditer(text):
        rest = match.group()[4:].strip()
        if rest and rest[0] != "#":
            raise KustomizeError(f"invalid document separator: {match.group().strip()}")
        pieces.append(text[previous : match.start()] + "\n")
        previous = match.end()
    pieces.append(text[previous:])
    return pieces


def parse_documents(text: str, source: str) -> list[dict[str, Any]]:
    """The non-empty mappings of a multi-document YAML stream (go-yaml v3 reading).

    Empty documents and `{}` are skipped, as kustomize skips them. Errors are kustomize's,
    with lines counted from the start of the document:
    `MalformedYAMLError: yaml: line 5: did not find expected ',' or ']' in File: x.yaml`.
    """
    found: list[dict[str, Any]] = []
    for piece in split_documents(text):
        try:
            documents = _load_all(piece, _Loader)
        except MalformedYAML as exc:
            raise MalformedYAML(f"MalformedYAMLError: {exc} in File: {source}") from None
        document = documents[0] if documents else None
        if document is None or document == {} or document == []:
            continue
        if not isinstance(document, dict):
            raise KustomizeError("missing Resource metadata")
        found.append(document)
    return found


def parse_kustomization_yaml(text: str) -> Any:
    """A kustomization file's content, read as sigs.k8s.io/yaml reads it (go-yaml v2)."""
    documents = [d for d in _load_all(text, _V2Loader) if d is not None]
    return documents[0] if documents else None


# ---------------------------------------------------------------------------------------------
# Writing: values as they come back from encoding/json into go-yaml v2


def _shortest(value: float) -> tuple[str, int]:
    """Shortest round-trip digits of abs(value) and the decimal point position."""
    mantissa, _, exponent = repr(abs(value)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    digits = whole + fraction
    point = len(whole) + (int(exponent) if exponent else 0)
    stripped = digits.lstrip("0")
    point -= len(digits) - len(stripped)
    digits = stripped.rstrip("0")
    return digits, point


def _format_f(digits: str, point: int) -> str:
    if point <= 0:
        whole = "0"
        fraction = "0" * -point + digits
    else:
        whole = (digits[:point] + "0" * (point - len(digits))) or "0"
        fraction = digits[point:]
    return f"{whole}.{fraction}" if fraction else whole


def _format_e(digits: str, point: int) -> str:
    exponent = point - 1
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    sign = "-" if exponent < 0 else "+"
    return f"{mantissa}e{sign}{abs(exponent):02d}"


def _format_float(value: float) -> str:
    """A float as encoding/json writes it, then go-yaml v2 reads and rewrites it."""
    if math.isnan(value) or math.isinf(value):
        raise KustomizeError(f"json: unsupported value: {_go_float_name(value)}")
    if value == 0:
        return "0"
    digits, point = _shortest(value)
    sign = "-" if value < 0 else ""
    magnitude = abs(value)
    if 1e-6 <= magnitude < 1e21 and point >= len(digits):
        # JSON wrote an integer; go-yaml reads it back as one when it fits 64 bits.
        integer = int(_format_f(digits, point)) * (-1 if sign else 1)
        if _INT64_MIN <= integer <= _INT64_MAX or (not sign and integer <= _UINT64_MAX):
            return str(integer)
    exponent = point - 1
    if exponent < -4 or exponent >= 6:
        return sign + _format_e(digits, point)
    return sign + _format_f(digits, point)


def _go_float_name(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return "+Inf" if value > 0 else "-Inf"


# What the JSON round trip does to strings: go-yaml's reader refuses some characters that
# encoding/json leaves unescaped, and folds NEL (a YAML line break) inside the quoted string.
_REFUSED = re.compile("[\x7f-\x84\x86-\x9f\ufffe\uffff]")
_NEL_RUN = re.compile(" *\x85[ \x85]*")


def _fold_nel(match: re.Match[str]) -> str:
    breaks = match.group().count("\x85")
    return " " if breaks == 1 else "\n" * (breaks - 1)


def _json_string(text: str) -> str:
    if not text.isascii() or "\x7f" in text:
        if _REFUSED.search(text):
            raise KustomizeError("yaml: control characters are not allowed")
        if "\x85" in text:
            text = _NEL_RUN.sub(_fold_nel, text)
    return text


def _json_key(text: str) -> str:
    if "\x85" in text:
        # A line break in a key of the JSON document go-yaml reads back.
        raise KustomizeError("yaml: line 1: did not find expected ',' or '}'")
    return _json_string(text)


# Key order: go-yaml v2's keyList.Less ("natural" order: letters after other characters,
# digit runs compared as numbers).


def _key_less(a: str, b: str) -> bool:
    for i in range(min(len(a), len(b))):
        ca, cb = a[i], b[i]
        if ca == cb:
            continue
        al, bl = ca.isalpha(), cb.isalpha()
        if al and bl:
            return ca < cb
        if al or bl:
            return bl
        an = bn = 0
        if ca == "0" or cb == "0":
            j = i - 1
            while j >= 0 and a[j].isdecimal():
                if a[j] != "0":
                    an = bn = 1
                    break
                j -= 1
        ai = i
        while ai < len(a) and a[ai].isdecimal():
            an = an * 10 + (ord(a[ai]) - 48)
            ai += 1
        bi = i
        while bi < len(b) and b[bi].isdecimal():
            bn = bn * 10 + (ord(b[bi]) - 48)
            bi += 1
        if an != bn:
            return an < bn
        if ai != bi:
            return ai < bi
        return ca < cb
    return len(a) < len(b)


def _key_cmp(a: str, b: str) -> int:
    if _key_less(a, b):
        return -1
    if _key_less(b, a):
        return 1
    return 0


_KEY_CMP = cmp_to_key(_key_cmp)
# Without digits or non-ASCII, the order is plain code point order with letters moved last.
_LETTERS_LAST = str.maketrans(
    {c: chr(ord(c) + 0x80) for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"}
)
_DIGITS = re.compile("[0-9]")


def _sorted_keys(keys: Iterable[str]) -> list[str]:
    keys = list(keys)
    if len(keys) < 2:
        return keys
    joined = "".join(keys)
    if joined.isascii() and not _DIGITS.search(joined):
        return sorted(keys, key=lambda k: k.translate(_LETTERS_LAST))
    return sorted(keys, key=_KEY_CMP)


# Scalar analysis (yaml_emitter_analyze_scalar): which styles a string allows.

_BREAKS = "\r\n\x85\u2028\u2029"
_ANY_BREAK = re.compile("[\r\n\x85\u2028\u2029]")
_BREAK_SPACE = re.compile("[\r\n\x85\u2028\u2029] ")
_SPACE_BREAK = re.compile(" [\r\n\x85\u2028\u2029]")
_NOT_PRINTABLE = re.compile("[^\n\x20-\x7e\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd]")
_FIRST_INDICATORS = frozenset("#,[]{}&*!|>'\"%@`")
_COLON_INDICATOR = re.compile(r":(?:[ \t]|\Z)")
_HASH_INDICATOR = re.compile("[ \t\r\n\x85\u2028\u2029\x00]#")
# Strings needing no analysis: no spaces, breaks or indicators, all printable.
_SIMPLE = re.compile(r"[-.]?[A-Za-z0-9_/][A-Za-z0-9_./-]*")
_SAFE_DOUBLE = re.compile("[\x20\x21\x23-\x5b\x5d-\x7e]*")

_PLAIN, _SINGLE, _DOUBLE, _LITERAL = 1, 2, 3, 4
_BEST_WIDTH = 80
_BEST_INDENT = 2


class _Analysis:
    """yaml_emitter_analyze_scalar(): which styles a string allows. Documents have no flow
    content with scalars in it, so only the block variants matter."""

    __slots__ = ("block", "multiline", "plain", "single")

    def __init__(self, text: str) -> None:
        self.multiline = False
        self.plain = True
        self.single = True
        self.block = True
        if _SIMPLE.fullmatch(text):
            return
        if not text:
            self.block = False
            return
        first = text[0]
        following = len(text) == 1 or text[1] in " \t"
        indicators = (
            text.startswith(("---", "..."))
            or first in _FIRST_INDICATORS
            or (first in "?-" and following)
            or _COLON_INDICATOR.search(text) is not None
            or _HASH_INDICATOR.search(text) is not None
        )
        special = _NOT_PRINTABLE.search(text) is not None
        breaks = _ANY_BREAK.search(text) is not None
        leading = first == " " or first in _BREAKS
        trailing_space = text[-1] == " "
        self.multiline = breaks
        if leading or trailing_space or breaks or indicators:
            self.plain = False
        if trailing_space:
            self.block = False
        if breaks and _BREAK_SPACE.search(text):
            self.plain = self.single = False
        if special or (breaks and _SPACE_BREAK.search(text)):
            self.plain = self.single = self.block = False


_SIMPLE_ANALYSIS = _Analysis("a")


class _Emitter:
    """Writes one document as go-yaml v2 does: block style, 2-space indents, no indent
    before a sequence that is a mapping value, `{}`/`[]` for empty collections."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.column = 0
        self.indent = -1
        self.indents: list[int] = []
        self.whitespace = True
        self.indention = True

    # -- low level (put, write, write_indent, write_indicator)

    def put(self, text: str) -> None:
        """Characters without line breaks."""
        self.parts.append(text)
        self.column += len(text)

    def put_break(self) -> None:
        self.parts.append("\n")
        self.column = 0

    def write_indent(self) -> None:
        indent = max(self.indent, 0)
        if (
            not self.indention
            or self.column > indent
            or (self.column == indent and not self.whitespace)
        ):
            self.put_break()
        if self.column < indent:
            self.put(" " * (indent - self.column))
        self.whitespace = True
        self.indention = True

    def write_indicator(
        self, indicator: str, need_whitespace: bool, is_whitespace: bool, is_indention: bool
    ) -> None:
        if need_whitespace and not self.whitespace:
            self.put(" ")
        self.put(indicator)
        self.whitespace = is_whitespace
        self.indention = self.indention and is_indention

    def increase_indent(self, flow: bool, indentless: bool) -> None:
        self.indents.append(self.indent)
        if self.indent < 0:
            self.indent = _BEST_INDENT if flow else 0
        elif not indentless:
            self.indent += _BEST_INDENT

    def pop_indent(self) -> None:
        self.indent = self.indents.pop()

    # -- nodes

    def node(self, value: Any, *, mapping: bool = False) -> None:
        if isinstance(value, dict):
            if value:
                self.block_mapping(value)
            else:
                self.empty("{", "}")
        elif isinstance(value, list | tuple):
            if value:
                self.block_sequence(value, mapping_context=mapping)
            else:
                self.empty("[", "]")
        else:
            self.scalar(value, simple_key=False)

    def empty(self, start: str, end: str) -> None:
        self.write_indicator(start, True, True, False)
        self.write_indicator(end, False, False, False)

    def block_mapping(self, mapping: dict[Any, Any]) -> None:
        self.increase_indent(False, False)
        indent = self.indent
        parts = self.parts
        keys = {
            k if type(k) is str and k.isascii() and "\x7f" not in k else _json_key(str(k)): k
            for k in mapping
        }
        for key in _sorted_keys(keys):
            value = mapping[keys[key]]
            # write_indent(), inlined: this runs for every key of every object.
            if (
                not self.indention
                or self.column > indent
                or (self.column == indent and not self.whitespace)
            ):
                parts.append("\n")
                self.column = 0
            if self.column < indent:
                parts.append(" " * (indent - self.column))
                self.column = indent
            self.whitespace = self.indention = True
            if len(key) <= 128 and _SIMPLE.fullmatch(key) and not _needs_quotes(key):
                # A plain key and its `:` (no analysis needed, never folded).
                parts.append(key)
                parts.append(":")
                self.column += len(key) + 1
                self.whitespace = self.indention = False
            else:
                analysis = _Analysis(key)
                if not analysis.multiline and len(key.encode()) <= 128:
                    self.string(key, analysis, simple_key=True)
                    self.write_indicator(":", False, False, False)
                else:
                    self.write_indicator("?", True, False, True)
                    self.string(key, analysis, simple_key=False)
                    self.write_indent()
                    self.write_indicator(":", True, False, True)
            kind = type(value)
            if kind is str and _SIMPLE.fullmatch(value) and not _needs_quotes(value):
                # A plain value after `key:` (simple strings never fold).
                parts.append(" ")
                parts.append(value)
                self.column += len(value) + 1
                self.whitespace = self.indention = False
            elif kind is int:
                text = str(value)
                parts.append(" ")
                parts.append(text)
                self.column += len(text) + 1
                self.whitespace = self.indention = False
            else:
                self.node(value, mapping=True)
        self.pop_indent()

    def block_sequence(self, items: Iterable[Any], *, mapping_context: bool) -> None:
        self.increase_indent(False, mapping_context and not self.indention)
        for item in items:
            self.write_indent()
            self.write_indicator("-", True, False, True)
            if type(item) is str and _SIMPLE.fullmatch(item) and not _needs_quotes(item):
                self.parts.append(" ")
                self.parts.append(item)
                self.column += len(item) + 1
                self.whitespace = self.indention = False
            else:
                self.node(item)
        self.pop_indent()

    def scalar(self, value: Any, *, simple_key: bool) -> None:
        if isinstance(value, str):
            text = _json_string(value)
            analysis = _SIMPLE_ANALYSIS if _SIMPLE.fullmatch(text) else _Analysis(text)
            self.string(text, analysis, simple_key=simple_key)
            return
        if value is None:
            text = "null"
        elif value is True:
            text = "true"
        elif value is False:
            text = "false"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, float):
            text = _format_float(value)
        else:
            raise KustomizeError(f"cannot print a value of type {type(value).__name__}")
        self.increase_indent(True, False)
        if not self.whitespace:
            self.put(" ")
        self.put(text)
        self.whitespace = False
        self.indention = False
        self.pop_indent()

    def string(self, text: str, analysis: _Analysis, *, simple_key: bool) -> None:
        # yaml.v2 stringv(): literal for multi-line text, plain unless it would read back as
        # another type, then yaml_emitter_select_scalar_style().
        if "\n" in text:
            style = _LITERAL
        elif _needs_quotes(text):
            style = _DOUBLE
        else:
            style = _PLAIN
        if simple_key and analysis.multiline:
            style = _DOUBLE
        if style == _PLAIN and (not analysis.plain or (not text and simple_key)):
            style = _SINGLE
        if style == _SINGLE and not analysis.single:
            style = _DOUBLE
        if style == _LITERAL and (not analysis.block or simple_key):
            style = _DOUBLE
        self.increase_indent(True, False)
        allow_breaks = not simple_key
        if style == _PLAIN:
            self.write_plain(text, allow_breaks)
        elif style == _SINGLE:
            self.write_single(text, allow_breaks)
        elif style == _DOUBLE:
            self.write_double(text, allow_breaks)
        else:
            self.write_literal(text)
        self.pop_indent()

    # -- scalar writers (yaml_emitter_write_*_scalar)

    def write_plain(self, text: str, allow_breaks: bool) -> None:
        if not self.whitespace:
            self.put(" ")
        if not allow_breaks or self.column + len(text) <= _BEST_WIDTH + 1 or " " not in text:
            self.put(text)  # no line to fold: plain scalars never hold breaks
        else:
            spaces = False
            length = len(text)
            for i, char in enumerate(text):
                if char == " ":
                    if (
                        not spaces
                        and self.column > _BEST_WIDTH
                        and not (i + 1 < length and text[i + 1] == " ")
                    ):
                        self.write_indent()
                    else:
                        self.put(char)
                    spaces = True
                else:
                    self.put(char)
                    self.indention = False
                    spaces = False
        self.whitespace = False
        self.indention = False

    def write_single(self, text: str, allow_breaks: bool) -> None:
        self.write_indicator("'", True, False, False)
        quoted = text.replace("'", "''")
        if _ANY_BREAK.search(text) is None and (
            not allow_breaks or self.column + len(quoted) <= _BEST_WIDTH + 1
        ):
            self.put(quoted)
        else:
            spaces = breaks = False
            length = len(text)
            for i, char in enumerate(text):
                if char == " ":
                    if (
                        allow_breaks
                        and not spaces
                        and self.column > _BEST_WIDTH
                        and 0 < i < length - 1
                        and text[i + 1] != " "
                    ):
                        self.write_indent()
                    else:
                        self.put(char)
                    spaces = True
                elif char in _BREAKS:
                    if not breaks and char == "\n":
                        self.put_break()
                    self.write_break(char)
                    self.indention = True
                    breaks = True
                else:
                    if breaks:
                        self.write_indent()
                    self.put("''" if char == "'" else char)
                    self.indention = False
                    spaces = breaks = False
        self.write_indicator("'", False, False, False)
        self.whitespace = False
        self.indention = False

    def write_break(self, char: str) -> None:
        if char == "\n":
            self.put_break()
        else:
            self.parts.append(char)
            self.column = 0

    def write_double(self, text: str, allow_breaks: bool) -> None:
        self.write_indicator('"', True, False, False)
        if _SAFE_DOUBLE.fullmatch(text) and (
            not allow_breaks or self.column + len(text) <= _BEST_WIDTH + 1
        ):
            self.put(text)
            self.write_indicator('"', False, False, False)
            self.whitespace = False
            self.indention = False
            return
        escape_all = text.startswith("\ufeff")  # go-yaml checks the BOM at the start only
        spaces = False
        length = len(text)
        for i, char in enumerate(text):
            code = ord(char)
            if (
                escape_all
                or char in _BREAKS
                or char == '"'
                or char == "\\"
                or not (
                    0x20 <= code <= 0x7E
                    or 0xA0 <= code <= 0xD7FF
                    or (0xE000 <= code <= 0xFFFD and code != 0xFEFF)
                )
            ):
                self.put(_escape(code))
                spaces = False
            elif char == " ":
                if allow_breaks and not spaces and self.column > _BEST_WIDTH and 0 < i < length - 1:
                    self.write_indent()
                    if i + 1 < length and text[i + 1] == " ":
                        self.put("\\")
                else:
                    self.put(char)
                spaces = True
            else:
                self.put(char)
                spaces = False
        self.write_indicator('"', False, False, False)
        self.whitespace = False
        self.indention = False

    def write_literal(self, text: str) -> None:
        self.write_indicator("|", True, False, False)
        if text[0] == " " or text[0] in _BREAKS:
            self.write_indicator(str(_BEST_INDENT), False, False, False)
        if text[-1] not in _BREAKS:
            self.write_indicator("-", False, False, False)
        elif len(text) == 1 or text[-2] in _BREAKS:
            self.write_indicator("+", False, False, False)
        self.put_break()
        self.indention = True
        self.whitespace = True
        breaks = True
        for line in re.split("([\r\n\x85\u2028\u2029])", text):
            if not line:
                continue
            if line in _BREAKS:
                self.write_break(line)
                self.indention = True
                breaks = True
            else:
                if breaks:
                    self.write_indent()
                self.put(line)
                self.indention = False
                breaks = False


_ESCAPES = {
    0x00: "0",
    0x07: "a",
    0x08: "b",
    0x09: "t",
    0x0A: "n",
    0x0B: "v",
    0x0C: "f",
    0x0D: "r",
    0x1B: "e",
    0x22: '"',
    0x5C: "\\",
    0x85: "N",
    0xA0: "_",
    0x2028: "L",
    0x2029: "P",
}


def _escape(code: int) -> str:
    short = _ESCAPES.get(code)
    if short is not None:
        return "\\" + short
    if code <= 0xFF:
        return f"\\x{code:02X}"
    if code <= 0xFFFF:
        return f"\\u{code:04X}"
    return f"\\U{code:08X}"


def dump(obj: dict[str, Any]) -> str:
    """One object as `kustomize build` prints it."""
    emitter = _Emitter()
    emitter.node(obj)
    # Document end: go to the start of a line.
    emitter.indent = -1
    emitter.write_indent()
    return "".join(emitter.parts)


def dump_all(objects: Iterable[dict[str, Any]]) -> str:
    """A stream of objects as `kustomize build` prints it: documents separated by `---`."""
    return "---\n".join(dump(obj) for obj in objects)

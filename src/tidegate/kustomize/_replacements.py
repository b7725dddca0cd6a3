"""The `replacements` field: copy a value from one field of one object into fields of other
objects, the way kustomize's ReplacementTransformer does it (api/filters/replacement).

Field paths follow kyaml: parts split on dots (`\\.` escapes a dot, `[a.b/c]` keeps a dotted map
key whole), `[name=value]` picks list elements, `[=value]` picks primitive list elements, a
number picks by position, and in targets `*` means every element of a list. Source paths match
list elements exactly; target paths treat the value as an unanchored regular expression, as
kyaml's PathMatcher does.
"""

from __future__ import annotations

import copy
import datetime
import json
import math
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ._errors import KustomizeError, json_kind
from ._loader import Loader
from ._resource import ResId, Resource, ResourceList
from ._selectors import parse_label_selector

DEFAULT_FIELD_PATH = "metadata.name"

# What the kustomization file accepts in a replacement (it is decoded strictly; a replacement
# read from a `path` file is not, so unknown fields there are ignored, as kustomize does).
_REPLACEMENT_FIELDS = {"path", "source", "targets"}
_ID_FIELDS = {"group", "version", "kind", "name", "namespace"}
_SOURCE_FIELDS = _ID_FIELDS | {"fieldPath", "options"}
_SELECTOR_FIELDS = _ID_FIELDS | {"labelSelector", "annotationSelector"}
_TARGET_FIELDS = {"select", "reject", "fieldPaths", "options"}
_OPTION_FIELDS = {"delimiter", "index", "create", "encoding"}


def apply_replacements(
    resources: ResourceList, entries: list[dict[str, Any]], loader: Loader
) -> None:
    """Apply a kustomization's `replacements`, in order, to `resources` (in place).

    Entries are inline replacements or `{path: file}`; a file holds one replacement or a list.
    """
    for replacement in load_replacements(entries, loader):
        _apply(list(resources), replacement)


def load_replacements(entries: list[dict[str, Any]], loader: Loader) -> list[Replacement]:
    """The replacements of a kustomization, files read and every entry checked."""
    found: list[Replacement] = []
    for entry in entries:
        if not isinstance(entry, dict):
            raise KustomizeError(
                f"invalid Kustomization: replacements: expected a mapping, got {entry!r}"
            )
        path = entry.get("path")
        if path:
            if entry.get("source") is not None or entry.get("targets"):
                raise KustomizeError("cannot specify both path and inline replacement")
            found.extend(_read_file(str(path), loader))
        else:
            _check_fields(entry)
            # Inline entries go through a round trip with `omitempty`: `targets: []` is no target.
            found.append(_parse(entry, targets_required=True))
    return found


def _read_file(path: str, loader: Loader) -> list[Replacement]:
    try:
        content = yaml.safe_load(loader.read_text(path))
    except yaml.YAMLError as exc:
        raise KustomizeError(f"invalid replacement file '{path}': {exc}") from exc
    if isinstance(content, dict):
        return [_parse(content, targets_required=False)]
    if isinstance(content, list):
        for item in content:
            if not isinstance(item, dict):
                raise KustomizeError(
                    f"'{path}': error unmarshaling JSON: while decoding JSON: json: cannot "
                    f"unmarshal {json_kind(item)} into Go value of type types.Replacement"
                )
        return [_parse(item, targets_required=False) for item in content]
    raise KustomizeError(
        f"'{path}': unsupported replacement type encountered within replacement path: "
        f"{_go_kind(content)}"
    )


def _check_fields(entry: dict[str, Any]) -> None:
    """Refuse unknown fields of an inline replacement, as kustomize's strict decoding does."""

    def check(value: Any, allowed: set[str]) -> None:
        if isinstance(value, dict):
            for key in value:
                if key not in allowed:
                    raise KustomizeError(f'invalid Kustomization: json: unknown field "{key}"')

    check(entry, _REPLACEMENT_FIELDS)
    source = entry.get("source")
    check(source, _SOURCE_FIELDS)
    if isinstance(source, dict):
        check(source.get("options"), _OPTION_FIELDS)
    for target in entry.get("targets") or []:
        check(target, _TARGET_FIELDS)
        if isinstance(target, dict):
            check(target.get("select"), _SELECTOR_FIELDS)
            for reject in target.get("reject") or []:
                check(reject, _SELECTOR_FIELDS)
            check(target.get("options"), _OPTION_FIELDS)


# --- The model of a replacement -------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    """How a field is read or written: split on `delimiter`, take or put part `index`, and (for
    targets) `create` the field when it is missing."""

    delimiter: str = ""
    index: int = 0
    create: bool = False

    def __str__(self) -> str:
        if not self.delimiter and not self.create:
            return ""
        return f"{self.delimiter}({self.index}), create={str(self.create).lower()}"


@dataclass(frozen=True)
class Selector:
    """Objects by id (empty fields match anything), labels and annotations."""

    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    def has_id(self) -> bool:
        return any((self.group, self.version, self.kind, self.name, self.namespace))

    def selects_id(self, rid: ResId) -> bool:
        """kustomize's ResId.IsSelectedBy. Namespaces compare as kustomize's replacement filter
        compares them: no namespace and `default` are the same, for every kind."""
        return (
            (not self.name or self.name == rid.name)
            and (
                not self.namespace or _effective_ns(self.namespace) == _effective_ns(rid.namespace)
            )
            and (not self.group or self.group == rid.group)
            and (not self.version or self.version == rid.version)
            and (not self.kind or self.kind == rid.kind)
        )

    def selects_metadata(self, resource: Resource) -> bool:
        return parse_label_selector(self.label_selector).matches(
            resource.labels()
        ) and parse_label_selector(self.annotation_selector).matches(resource.annotations())

    def describe(self) -> str:
        """As kustomize prints a ResId: `Kind.version.group/name.namespace`."""
        gvk = ".".join(
            (self.kind or "[noKind]", self.version or "[noVer]", self.group or "[noGrp]")
        )
        return f"{gvk}/{self.name or '[noName]'}.{self.namespace or '[noNs]'}"


@dataclass(frozen=True)
class Source:
    selector: Selector
    field_path: str
    options: Options

    def describe(self) -> str:
        parts = [self.selector.describe()]
        if self.field_path:
            parts.append(self.field_path)
        if str(self.options):
            parts.append(str(self.options))
        return ":".join(parts)


@dataclass(frozen=True)
class Target:
    select: Selector | None
    reject: list[Selector] = field(default_factory=list)
    field_paths: list[str] = field(default_factory=list)
    options: Options = Options()


@dataclass(frozen=True)
class Replacement:
    source: Source | None
    targets: list[Target] | None


def _parse(entry: dict[str, Any], *, targets_required: bool) -> Replacement:
    raw_source = entry.get("source")
    source = None
    if isinstance(raw_source, dict):
        source = Source(
            _selector(raw_source), str(raw_source.get("fieldPath") or ""), _options(raw_source)
        )
    raw_targets = entry.get("targets")
    targets = None
    if isinstance(raw_targets, list) and (raw_targets or not targets_required):
        targets = [_target(t) for t in raw_targets]
    return Replacement(source, targets)


def _target(raw: Any) -> Target:
    if not isinstance(raw, dict):
        raise KustomizeError(f"invalid replacement target: {raw!r}")
    select = raw.get("select")
    return Target(
        select=_selector(select) if isinstance(select, dict) else None,
        reject=[_selector(r) for r in raw.get("reject") or [] if isinstance(r, dict)],
        field_paths=[str(p) for p in raw.get("fieldPaths") or []],
        options=_options(raw),
    )


def _selector(raw: dict[str, Any]) -> Selector:
    def text(key: str) -> str:
        return str(raw.get(key) or "")

    return Selector(
        group=text("group"),
        version=text("version"),
        kind=text("kind"),
        name=text("name"),
        namespace=text("namespace"),
        label_selector=text("labelSelector"),
        annotation_selector=text("annotationSelector"),
    )


def _options(raw: dict[str, Any]) -> Options:
    options = raw.get("options")
    if not isinstance(options, dict):
        return Options()
    index = options.get("index") or 0
    if isinstance(index, bool) or not isinstance(index, int):
        raise KustomizeError(
            f"invalid Kustomization: json: cannot unmarshal {json_kind(index)} into Go struct "
            "field FieldOptions.index of type int"
        )
    return Options(str(options.get("delimiter") or ""), index, bool(options.get("create")))


# --- Applying one replacement ---------------------------------------------------------------


def _apply(resources: list[Resource], replacement: Replacement) -> None:
    if replacement.source is None or replacement.targets is None:
        raise KustomizeError("replacements must specify a source and at least one target")
    value = _source_value(resources, replacement.source)
    for target in replacement.targets:
        if target.select is None:
            raise KustomizeError("target must specify resources to select")
        for resource in resources:
            if _is_target(resource, target):
                for field_path in target.field_paths or [DEFAULT_FIELD_PATH]:
                    _write(resource.obj, field_path, value, target.options)


def _source_value(resources: list[Resource], source: Source) -> Any:
    matches = [r for r in resources if any(source.selector.selects_id(i) for i in _ids(r))]
    if len(matches) > 1:
        raise KustomizeError(f"multiple matches for selector {source.describe()}")
    if not matches:
        raise KustomizeError(f"nothing selected by {source.describe()}")
    field_path = source.field_path or DEFAULT_FIELD_PATH
    try:
        value = _lookup(matches[0].obj, split_field_path(field_path))
    except _PathError as exc:
        raise KustomizeError(f"error looking up replacement source: {exc}") from None
    if value is _MISSING or value is None or value == {} or value == []:
        raise KustomizeError(
            f"fieldPath `{field_path}` is missing for replacement source "
            f"{source.selector.describe()}"
        )
    options = source.options
    if not options.delimiter:
        return value
    if not _is_scalar(value):
        raise KustomizeError("delimiter option can only be used with scalar nodes")
    text = _scalar_text(value)
    parts = text.split(options.delimiter)
    if not 0 <= options.index < len(parts):
        raise KustomizeError(f"options.index {options.index} is out of bounds for value {text}")
    # kustomize keeps the source node's tag and replaces its text.
    return parts[options.index] if isinstance(value, str) else _retyped(parts[options.index], value)


def _is_target(resource: Resource, target: Target) -> bool:
    assert target.select is not None
    if not target.select.selects_metadata(resource):
        return False
    # A reject by labels or annotations rejects on those alone, a reject by id on the id alone
    # (kustomize checks the two halves of a reject separately).
    for reject in target.reject:
        if (reject.label_selector or reject.annotation_selector) and reject.selects_metadata(
            resource
        ):
            return False
    # Every id the object had in this build counts: one selected makes it a target, one
    # rejected rules it out.
    ids = _ids(resource)
    if any(r.has_id() and r.selects_id(i) for r in target.reject for i in ids):
        return False
    return any(target.select.selects_id(i) for i in ids)


def _ids(resource: Resource) -> list[ResId]:
    """The current id and the earlier ones (names before prefixes, namespaces before the
    namespace transformer, kinds before a kind-changing patch). Like kustomize, earlier ids take
    the current group and version."""
    current = resource.id()
    return [current] + [
        ResId(current.group, current.version, p.kind, p.name, p.namespace)
        for p in resource.previous
    ]


def _effective_ns(namespace: str) -> str:
    return namespace or "default"


# --- Field paths ----------------------------------------------------------------------------


class _PathError(Exception):
    """A field path does not fit the object (kyaml's wording)."""


class _Missing:
    pass


_MISSING: Any = _Missing()


class _Plain(str):
    """A scalar created by the `create` option. It has no YAML tag yet: the value written into
    it is read as a plain scalar would be (`7` an int, `true` a bool), where an existing field
    keeps its type."""


def split_field_path(path: str) -> list[str]:
    """kyaml's SmarterPathSplitter: split on `.`, except escaped (`\\.`) or within brackets;
    `[a.b/c]` (no `=`) is the map key `a.b/c`."""
    pieces: list[str] = []
    for piece in path.split("."):
        if pieces and pieces[-1].endswith("\\"):
            pieces[-1] = pieces[-1][:-1] + "." + piece
        else:
            pieces.append(piece)
    parts: list[str] = []
    i = 0
    while i < len(pieces):
        piece = pieces[i]
        if piece.startswith("[") and not piece.endswith("]"):
            bracketed = [piece]
            while i < len(pieces) - 1:
                i += 1
                bracketed.append(pieces[i])
                if pieces[i].endswith("]"):
                    break
            joined = ".".join(bracketed)
            parts.append(joined if "=" in joined else joined.strip("[]"))
        else:
            parts.append(piece)
        i += 1
    return parts


def _is_index(part: str) -> bool:
    return re.fullmatch(r"[+-]?[0-9]+", part) is not None and int(part) >= 0


def _is_list_entry(part: str) -> bool:
    return part.startswith("[") and part.endswith("]")


def _split_list_entry(part: str) -> tuple[str, str]:
    name, eq, value = part[1:-1].partition("=")
    if not eq:
        raise _PathError("list path element must contain fieldName=fieldValue for element to match")
    return name, value


def _elements(node: Any) -> list[Any]:
    if node is None:
        return []
    if not isinstance(node, list):
        raise _wrong_kind("SequenceNode", node)
    return node


def _mapping(node: Any) -> dict[str, Any] | None:
    if node is None:
        return None
    if not isinstance(node, dict):
        raise _wrong_kind("MappingNode", node)
    return node


def _wrong_kind(expected: str, node: Any) -> _PathError:
    contents = yaml.safe_dump(node, default_flow_style=False, sort_keys=False).strip()
    if contents.endswith("\n..."):
        contents = contents[: -len("\n...")]
    return _PathError(
        f"wrong node kind: expected {expected} but got {_node_kind(node)}: "
        f"node contents:\n{contents}"
    )


def _node_kind(node: Any) -> str:
    if isinstance(node, dict):
        return "MappingNode"
    if isinstance(node, list):
        return "SequenceNode"
    return "ScalarNode"


def _lookup(obj: Any, path: list[str]) -> Any:
    """A source field (kyaml's PathGetter): list elements match by exact value."""
    node = obj
    for part in (p.strip() for p in path):
        if not part:
            continue
        if re.fullmatch(r"[+-]?[0-9]+", part):
            index = int(part)
            if index < 0:
                raise _PathError(f"array index {index} cannot be negative")
            elements = _elements(node)
            node = elements[index] if index < len(elements) else _MISSING
        elif part == "-":
            elements = _elements(node)
            node = elements[-1] if elements else _MISSING
        elif _is_list_entry(part):
            key, wanted = _split_list_entry(part)
            node = next((e for e in _elements(node) if _entry_value(e, key) == wanted), _MISSING)
        else:
            mapping = _mapping(node)
            node = mapping.get(part, _MISSING) if mapping is not None else _MISSING
        if node is _MISSING or node is None:
            return _MISSING
    return node


def _entry_value(element: Any, key: str) -> str | None:
    """The text a `[key=value]` part compares (kyaml compares a scalar node's value)."""
    if not key:
        return _scalar_text(element) if _is_scalar(element) else ""
    if not isinstance(element, dict) or key not in element:
        return None
    value = element[key]
    return _scalar_text(value) if _is_scalar(value) else ""


# A place in an object: the container and the key or index of the value.
_Slot = tuple[Any, Any]


def _match(parent: Any, key: Any, path: list[str], create: str) -> list[_Slot]:
    """Target fields (kyaml's PathMatcher): every place `path` leads to from `parent[key]`,
    missing parts created when `create` names the kind of the value to write."""
    if not path:
        return [(parent, key)]
    part, rest = path[0], path[1:]
    node = parent[key]
    if _is_index(part):
        index = int(part)
        elements = _elements(node)
        if len(elements) == index and create:
            elements = _list_in(parent, key)
            elements.append(_new_node(rest[0] if rest else "", create))
        if len(elements) < index + 1:
            raise _PathError(f"index {index} specified but only {len(elements)} elements found")
        return _match(elements, index, rest, create)
    if _is_list_entry(part):
        return _match_entries(parent, key, part, rest, create, retry=True)
    if part == "*":
        elements = _elements(node)
        return [slot for i in range(len(elements)) for slot in _match(elements, i, rest, create)]
    mapping = _mapping(node)
    if mapping is None or part not in mapping:
        if not create:
            return []
        if mapping is None:
            mapping = parent[key] = {}
        mapping[part] = _new_node(rest[0] if rest else "", create)
    return _match(mapping, part, rest, create)


def _match_entries(
    parent: Any, key: Any, part: str, rest: list[str], create: str, *, retry: bool
) -> list[_Slot]:
    name, expression = _split_list_entry(part)
    elements = _elements(parent[key])
    try:
        pattern = re.compile(expression)
    except re.error as exc:
        raise _PathError(f"error parsing regexp: {exc}") from None
    slots: list[_Slot] = []
    for i, element in enumerate(elements):
        if not name:
            # A primitive element matches itself; the rest of the path is not followed.
            if pattern.search(_node_text(element)):
                slots.append((elements, i))
        elif (
            isinstance(element, dict)
            and name in element
            and pattern.search(_node_text(element[name]))
        ):
            slots.extend(_match(elements, i, rest, create))
    if slots or not create or not retry:
        return slots
    created: Any = _Plain(expression) if not name else {name: _resolve(expression)[1]}
    _list_in(parent, key).append(created)
    return _match_entries(parent, key, part, rest, create, retry=False)


def _list_in(parent: Any, key: Any) -> list[Any]:
    if parent[key] is None:
        parent[key] = []
    elements: list[Any] = parent[key]
    return elements


def _new_node(next_part: str, create: str) -> Any:
    """What `create` puts at a missing part: a list when the next part indexes one, a mapping
    when a field follows, and at the end of the path a node of the value's kind."""
    if _is_list_entry(next_part) or _is_index(next_part):
        return []
    if next_part:
        return {}
    return {"map": {}, "seq": []}.get(create, _Plain(""))


def _write(obj: dict[str, Any], field_path: str, value: Any, options: Options) -> None:
    create = _value_kind(value) if options.create else ""
    holder = [obj]
    try:
        slots = _match(holder, 0, split_field_path(field_path), create)
    except _PathError as exc:
        raise KustomizeError(f"{_not_found(field_path, options.create)}: {exc}") from None
    if not slots:
        raise KustomizeError(_not_found(field_path, options.create))
    for parent, key in slots:
        parent[key] = _replaced(parent[key], value, options)


def _not_found(field_path: str, create: bool) -> str:
    quoted = json.dumps(field_path, ensure_ascii=False)
    if create:
        return f"unable to find or create field {quoted} in replacement target"
    return f"unable to find field {quoted} in replacement target"


def _replaced(current: Any, value: Any, options: Options) -> Any:
    """The new value of a target field. A scalar keeps its type and takes the value's text (so
    `replicas: 1` takes "5" as 5, and `value: "3"` takes 5 as "5"); a list or mapping is
    replaced by a copy of the value."""
    text = _scalar_text(value) if _is_scalar(value) else ""
    if options.delimiter:
        if not _is_scalar(current):
            raise KustomizeError("delimiter option can only be used with scalar nodes")
        parts = _scalar_text(current).split(options.delimiter)
        if options.index < 0:
            parts.insert(0, text)
        elif options.index >= len(parts):
            parts.append(text)
        else:
            parts[options.index] = text
        text = options.delimiter.join(parts)
    if not _is_scalar(current):
        return copy.deepcopy(value)
    if isinstance(current, _Plain):
        return _resolve(text)[1]
    return _retyped(text, current)


# --- Scalars --------------------------------------------------------------------------------


def _is_scalar(node: Any) -> bool:
    return not isinstance(node, dict | list)


def _value_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "seq"
    return "scalar"


def _scalar_text(value: Any) -> str:
    """A scalar's text, as it would read in YAML."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        return repr(value)
    if isinstance(value, datetime.datetime | datetime.date):
        return value.isoformat()
    return str(value)


def _node_text(node: Any) -> str:
    """What a list-entry pattern is matched against (kyaml matches the node as YAML text)."""
    if _is_scalar(node):
        return _scalar_text(node)
    return yaml.safe_dump(node, default_flow_style=False, sort_keys=False).strip()


_FLOAT = re.compile(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?")
_INT = re.compile(r"[-+]?(0[xX][0-9a-fA-F]+|0[oO][0-7]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)")
_SPECIAL: dict[str, tuple[str, Any]] = {
    **{s: ("null", None) for s in ("", "~", "null", "Null", "NULL")},
    **{s: ("bool", True) for s in ("true", "True", "TRUE")},
    **{s: ("bool", False) for s in ("false", "False", "FALSE")},
    **{s: ("float", math.inf) for s in (".inf", ".Inf", ".INF", "+.inf", "+.Inf", "+.INF")},
    **{s: ("float", -math.inf) for s in ("-.inf", "-.Inf", "-.INF")},
    **{s: ("float", math.nan) for s in (".nan", ".NaN", ".NAN")},
}


def _resolve(text: str) -> tuple[str, Any]:
    """The tag and value of `text` as a plain YAML scalar, by go-yaml v3's rules."""
    if text in _SPECIAL:
        return _SPECIAL[text]
    plain = text.replace("_", "")
    if _INT.fullmatch(plain):
        sign = -1 if plain.startswith("-") else 1
        digits = plain.lstrip("+-")
        if len(digits) > 1 and digits[0] == "0" and digits[1] in "01234567":
            return "int", sign * int(digits, 8)  # Go reads a leading 0 as octal
        return "int", sign * int(digits, 0)
    if _FLOAT.fullmatch(plain):
        return "float", float(plain)
    return "str", text


def _retyped(text: str, current: Any) -> Any:
    """`text` in the type of the scalar it replaces; an error where kustomize's output would
    fail to decode it (`replicas: 1` set to "abc")."""
    if isinstance(current, str):
        return text
    tag, value = _resolve(text)
    if isinstance(current, bool):
        wanted = "bool"
    elif isinstance(current, int):
        wanted = "int"
    elif isinstance(current, float):
        wanted = "float"
        if tag == "int":
            tag, value = "float", float(value)
    elif current is None:
        wanted = "null"
    else:
        return text
    if tag != wanted:
        raise KustomizeError(
            f"map[string]interface {{}}(nil): yaml: cannot decode !!{tag} `{text}` as a !!{wanted}"
        )
    return value


def _go_kind(value: Any) -> str:
    if value is None:
        return "invalid"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "float64"
    return "string"

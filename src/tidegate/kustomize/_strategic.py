"""Strategic merge patch, as kustomize v5 applies it.

kustomize does not use apimachinery's strategicpatch: it walks the object and the patch side by
side with kyaml's merge2 walker, and this module follows that walker step by step, quirks
included, because users see its results:

- Maps merge field by field; a patch value `null` removes the field; a `null` already in the
  object stays when the patch does not name the field.
- Lists merge only where kustomize's schema gives the field a "merge" strategy (`containers` by
  `name`, `ports` by `containerPort` and `protocol`, `finalizers` as a set...); every other list,
  and every list of a kind without a schema (custom resources), is replaced: such kinds merge
  like a JSON merge patch.
- Merged lists put the patch's elements first, in the patch's order, then the elements only the
  object has. Elements are matched on the merge keys the element has; an object's elements
  missing the key, duplicates and `null` elements are collapsed the way kyaml collapses them.
- `$patch: delete|replace|merge` work on maps (`delete` on the whole patch deletes the object) and
  as a `{$patch: ...}` element of a merged list. `$patch: replace` on an element of a merged list
  has no effect: kyaml puts the object's element back.
- `$retainKeys`, `$setElementOrder/<field>` and `$deleteFromPrimitiveList/<field>` are
  apimachinery directives that kyaml does not know: they are copied into the object as ordinary
  fields, as kustomize does.
"""

from __future__ import annotations

import datetime
from typing import Any, Final

import yaml

from ._errors import KustomizeError
from ._schema import FieldSchema, schema_for


class _Missing:
    """A field or element that is not there (kyaml's nil node), as opposed to `null`."""

    _instance: _Missing | None = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Final = _Missing()

_DIRECTIVE = "$patch"
_DELETE, _REPLACE, _MERGE = "delete", "replace", "merge"


def strategic_merge(target: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """The object `target` patched with `patch`; `{}` when the patch deletes it.

    The schema (merge keys, strategies) is the one of the target's apiVersion and kind. Neither
    argument is modified.
    """
    result = _walk(_copy(target), _copy(patch), None)
    return result if isinstance(result, dict) else {}


# -- the walker ---------------------------------------------------------------------------------


def _walk(dest: Any, origin: Any, schema: FieldSchema | None) -> Any:
    """Merge `origin` (patch) into `dest` (object); MISSING means "remove the field"."""
    schema = _schema_of(dest, origin, schema)
    kind = _kind(dest, origin)
    if kind is dict or kind is None:  # kyaml walks two absent values as maps
        if kind is dict:
            _check_kind(dict, dest, origin)
        return _walk_map(dest, origin, schema)
    if kind is list:
        _check_kind(list, dest, origin)
        if schema is not None and schema.merges:
            return _walk_merged_list(dest, origin, schema)
        return origin if origin is not MISSING else dest
    _check_kind(str, dest, origin)
    return origin if origin is not MISSING else dest


def _walk_map(dest: Any, origin: Any, schema: FieldSchema | None) -> Any:
    merged = _visit_map(dest, origin)
    if merged is MISSING:
        return MISSING
    names: set[str] = set()
    for source in (merged, origin):
        if isinstance(source, dict):
            names.update(source)
    for name in sorted(names, key=str):
        dest_value = merged.get(name, MISSING) if isinstance(merged, dict) else MISSING
        patch_value = origin.get(name, MISSING) if isinstance(origin, dict) else MISSING
        if dest_value is None and patch_value is MISSING:
            # kustomize keeps the object's own nulls that the patch does not mention.
            continue
        value = _walk(dest_value, patch_value, schema.field(name) if schema else None)
        if value is MISSING or value is None:
            merged.pop(name, None)
        else:
            merged[name] = value
    return merged


def _visit_map(dest: Any, origin: Any) -> Any:
    if _missing_or_null(dest):
        try:
            directive = _directive(origin)
        except KustomizeError:  # kyaml ignores a bad directive on an added map
            directive = ""
        return MISSING if directive == _DELETE else origin
    if origin is None:
        return MISSING
    directive = _directive(origin)
    if directive == _DELETE:
        return MISSING
    if directive == _REPLACE:
        return origin
    return dest


def _walk_merged_list(dest: Any, origin: Any, schema: FieldSchema) -> Any:
    merged = _visit_merged_list(dest, origin)
    if merged is MISSING:
        return MISSING
    sources = (merged, origin)
    keys = list(schema.merge_keys)
    values = _element_values(sources, keys)
    if not values and not keys:
        # A list of scalars merged as a set (finalizers): each value is its own key.
        keys, values = [""], [[value] for value in _primitive_values(sources)]
    return _merge_elements(sources, values, keys, schema.elements())


def _visit_merged_list(dest: Any, origin: Any) -> Any:
    if _missing_or_null(dest):
        return origin
    if origin is None:
        return MISSING
    directive = _list_directive(origin)
    if directive == _DELETE:
        return MISSING
    if directive == _REPLACE:
        return origin
    return dest


def _merge_elements(
    sources: tuple[Any, Any], values: list[list[str]], keys: list[str], schema: FieldSchema | None
) -> Any:
    """kyaml's setAssociativeSequenceElements: walk the elements of both lists, key by key."""
    dest, origin = sources
    if len(keys) > 1:
        _merge_key_values(values)
    merged: list[Any] = []
    valid_keys: list[str] = []
    for value in values:
        if not value:
            continue
        valid_keys, valid_values = _valid_keys(values, value, keys)
        match_keys, match_values = _valid_keys([valid_values], valid_values, valid_keys)
        element = _walk(
            _match_element(dest, match_keys, match_values),
            _match_element(origin, match_keys, match_values),
            schema,
        )
        if _missing_or_null(element) or element == {}:
            _set_element(dest, MISSING, valid_keys, valid_values)
            continue
        for key, key_value in zip(valid_keys, valid_values, strict=True):
            # kyaml sets a key the merged element lost (to a scalar: rewrites it as is).
            if key_value == "":
                continue
            if key == "":
                if isinstance(element, dict | list):
                    raise _wrong_kind(str, element)
            elif not isinstance(element, dict):
                raise _wrong_kind(dict, element)
            elif key not in element:
                element[key] = _plain_scalar(key_value)
        _set_element(merged, element, valid_keys, valid_values)
    if not values:
        return dest
    result = _append_elements(merged, dest, valid_keys)
    return MISSING if _missing_or_null(result) else result


def _merge_key_values(values: list[list[str]]) -> None:
    """kyaml's mergeValues: key values differing only where one is empty (a port with and one
    without a protocol) count as one, with the empty parts filled in."""
    for i in range(len(values)):
        first = values[i]
        for j in range(len(values)):
            matched, combined = _match_key_values(first, values[j])
            if matched:
                values[i] = combined
                values[j] = combined


def _match_key_values(first: list[str], second: list[str]) -> tuple[bool, list[str]]:
    if len(first) != len(second):
        return False, []
    common = False
    combined: list[str] = []
    for a, b in zip(first, second, strict=True):
        if a == b:
            common = True
            combined.append(a)
        elif a and b:
            return False, []
        else:
            combined.append(a or b)
    return common, combined


def _element_values(sources: tuple[Any, Any], keys: list[str]) -> list[list[str]]:
    """The merge key values of every element, the patch's first (kustomize prepends)."""
    found: list[list[str]] = []
    for source in (sources[1], sources[0]):
        if not isinstance(source, list):
            continue
        for element in source:
            value = [_key_text(element, key) for key in keys]
            if value and value not in found:
                found.append(value)
    return found


def _primitive_values(sources: tuple[Any, Any]) -> list[str]:
    found: list[str] = []
    for source in (sources[1], sources[0]):
        if not isinstance(source, list):
            continue
        for element in source:
            text = _text(element)
            if text not in found:
                found.append(text)
    return found


def _valid_keys(
    values_list: list[list[str]], value: list[str], keys: list[str]
) -> tuple[list[str], list[str]]:
    """kyaml's validateKeys: the merge keys that have a value in some element of the list
    (all keys when none has); the element's values for them."""
    present = {keys[i] for values in values_list for i, v in enumerate(values) if v != ""}
    if not present:
        return keys, value
    valid_keys = [k for k in keys if k in present]
    valid_values = [v for i, v in enumerate(value) if v != "" or keys[i] in present]
    return valid_keys, valid_values


def _append_elements(dst: list[Any], src: Any, keys: list[str]) -> list[Any]:
    """kyaml's appendListNode: put each element of `src` into `dst`, in place of the elements
    with the same key values, else at the end."""
    if not isinstance(src, list):
        return dst
    for element in list(src):
        if keys[0] == "":
            _set_element(dst, element, [""], [_text(element)])
            continue
        key_values: list[str] = []
        for key in keys:
            if _missing_or_null(element):
                found: Any = MISSING
            elif not isinstance(element, dict):
                raise _wrong_kind(dict, element)
            else:
                found = element.get(key, MISSING)
            if found is MISSING:
                dst.append(element)
                continue
            key_values.append(_text(found))
        if len(keys) > 1:
            # With several keys kyaml removes the element first, to append it only once.
            _set_element(dst, MISSING, keys, key_values)
        _set_element(dst, element, keys, key_values)
    return dst


def _set_element(items: list[Any], element: Any, keys: list[str], values: list[str]) -> None:
    """kyaml's ElementSetter: replace (or, with MISSING, delete) the elements matching the key
    values, append when none matches. Like kyaml, drops `null` and `{}` elements on the way."""
    if not isinstance(items, list):
        return
    keys = keys or [""]
    mapping_setter = keys[0] != "" and bool(values) and values[0] != ""
    kept: list[Any] = []
    matched = False
    for item in items:
        if _missing_or_null(item) or item == {}:
            continue
        if mapping_setter and not isinstance(item, dict):
            kept.append(item)
            continue
        found = True
        hit = False
        for index, key in enumerate(keys):
            if index < len(values):
                hit = _field_matches(item, key, values[index])
            if not hit:
                found = False
                break
        if not found:
            if values:
                kept.append(item)
            continue
        matched = True
        if element is not MISSING:
            kept.append(element)
    items[:] = kept
    if _missing_or_null(element):
        return
    if not matched:
        items.append(element)


def _field_matches(item: Any, name: str, value: str) -> bool:
    """kyaml's FieldMatcher{Name, StringValue}: an empty value matches on presence."""
    if _missing_or_null(item):
        return False
    if name == "":
        if isinstance(item, dict | list):
            raise _wrong_kind(str, item)
        return _text(item) == value
    if not isinstance(item, dict):
        raise _wrong_kind(dict, item)
    if name not in item:
        return False
    return value == "" or _text(item[name]) == value


def _match_element(items: Any, keys: list[str], values: list[str]) -> Any:
    """kyaml's ElementMatcher: the first element with these key values, else MISSING."""
    if not isinstance(items, list):
        return MISSING
    if keys[0] == "":
        for item in items:
            if _text(item) == values[0]:
                return item
        return MISSING
    for item in items:
        if not isinstance(item, dict):
            continue
        if all(key in item and _text(item[key]) == v for key, v in zip(keys, values, strict=True)):
            return item
    return MISSING


# -- directives ---------------------------------------------------------------------------------


def _directive(patch: Any) -> str:
    """`$patch` of a patch map, removed from it; "merge" when absent."""
    if not isinstance(patch, dict) or _DIRECTIVE not in patch:
        if patch is MISSING or isinstance(patch, dict):
            return _MERGE
        raise KustomizeError(f"no implemented strategic merge patch strategy for '{_text(patch)}'")
    value = _text(patch[_DIRECTIVE])
    if value not in (_DELETE, _REPLACE, _MERGE):
        raise KustomizeError(f"unknown patch strategy '{value}'")
    del patch[_DIRECTIVE]
    return value


def _list_directive(patch: Any) -> str:
    """A `{$patch: ...}` element of a patch list (alone in its map), removed from the list."""
    if not isinstance(patch, list):
        return _MERGE
    for element in patch:
        if isinstance(element, dict) and _DIRECTIVE in element:
            if len(element) > 1:
                return _MERGE
            value = _text(element[_DIRECTIVE])
            if value not in (_DELETE, _REPLACE, _MERGE):
                raise KustomizeError(f"unknown patch strategy '{value}'")
            _set_element(patch, MISSING, [_DIRECTIVE], [value])
            return value
    return _MERGE


# -- values -------------------------------------------------------------------------------------


def _missing_or_null(value: Any) -> bool:
    return value is MISSING or value is None


def _schema_of(dest: Any, origin: Any, schema: FieldSchema | None) -> FieldSchema | None:
    # Below an unknown field kyaml looks for apiVersion and kind in the map itself, so objects
    # embedded in custom resources merge with their own kind's schema.
    if schema is not None:
        return schema
    for source in (dest, origin):
        if isinstance(source, dict):
            api_version, kind = source.get("apiVersion"), source.get("kind")
            if _is_scalar(api_version) and _is_scalar(kind) and api_version and kind:
                found = schema_for(_text(api_version), _text(kind))
                if found is not None:
                    return found
    return None


def _kind(dest: Any, origin: Any) -> type | None:
    for source in (dest, origin):
        if not _missing_or_null(source):
            return _kind_of(source)
    return None


def _kind_of(value: Any) -> type:
    if isinstance(value, dict):
        return dict
    if isinstance(value, list):
        return list
    return str


def _check_kind(kind: type, *sources: Any) -> None:
    for source in sources:
        if not _missing_or_null(source) and _kind_of(source) is not kind:
            raise _wrong_kind(kind, source)


_NODE_KINDS: dict[type, str] = {dict: "MappingNode", list: "SequenceNode", str: "ScalarNode"}


def _wrong_kind(expected: type, value: Any) -> KustomizeError:
    contents = yaml.safe_dump(value, default_flow_style=None, sort_keys=False).rstrip("\n")
    contents = contents.removesuffix("\n...")
    return KustomizeError(
        f"wrong node kind: expected {_NODE_KINDS[expected]} but got "
        f"{_NODE_KINDS[_kind_of(value)]}: node contents:\n{contents}"
    )


def _is_scalar(value: Any) -> bool:
    return not isinstance(value, dict | list) and value is not MISSING


def _text(value: Any) -> str:
    """The text of a YAML scalar, which is what kyaml compares; "" for maps and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, dict | list) or value is MISSING:
        return ""
    if isinstance(value, datetime.date | datetime.datetime):
        return value.isoformat()
    if isinstance(value, float):
        if value != value:
            return ".nan"
        if value in (float("inf"), float("-inf")):
            return ".inf" if value > 0 else "-.inf"
    return str(value)


def _key_text(element: Any, key: str) -> str:
    """kyaml's ElementValuesList entry: "" when the key is absent, null or empty."""
    if not isinstance(element, dict):
        return ""
    value = element.get(key)
    if value is None or value == {} or value == []:
        return ""
    return _text(value)


def _plain_scalar(text: str) -> Any:
    # kyaml writes a missing merge key back as an untagged scalar, read again by its text.
    value = yaml.safe_load(text) if text else text
    return value if _is_scalar(value) else text


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value

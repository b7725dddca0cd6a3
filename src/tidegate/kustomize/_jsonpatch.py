"""JSON patch (RFC 6902) as kustomize v5 applies it, with github.com/evanphx/json-patch.

That library's ways, which kustomize users see:

- `replace` of a missing object key adds it; a `replace` of the whole document with a scalar does
  nothing; `copy` from a missing object key copies `null`; `add` without a `value` adds `null`.
- Negative array indexes count from the end (`/list/-1` is the last element); `-` appends.
- Errors read like the library's: `error in remove for path: '/a': Unable to remove nonexistent
  key: a: missing value`.
- The object goes through JSON on the way: every number comes back as a float64 (so integers
  beyond 2^53 lose precision and `1.0` becomes `1`), timestamps become RFC 3339 strings.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

from ._errors import KustomizeError, json_kind
from ._yaml import parse_kustomization_yaml

Operation = dict[str, Any]

_ABSENT = object()  # a key that is not there, as opposed to a JSON null


def parse_json_patch(text: str) -> list[Operation]:
    """The operations of a patch written in JSON (starting with `[`) or YAML."""
    if text == "":
        raise KustomizeError("empty json patch operations")
    try:
        decoded = json.loads(text if text.startswith("[") else yaml_to_json(text))
    except ValueError as exc:
        raise KustomizeError(f"invalid JSON patch: {exc}") from None
    if decoded is None:
        return []
    if not isinstance(decoded, list):
        raise KustomizeError(
            f"json: cannot unmarshal {json_kind(decoded)} into Go value of type jsonpatch.Patch"
        )
    operations: list[Operation] = []
    for item in decoded:
        if item is None:
            item = {}
        if not isinstance(item, dict):
            raise KustomizeError(
                f"json: cannot unmarshal {json_kind(item)} into Go value of type "
                "jsonpatch.Operation"
            )
        operations.append(item)
    return operations


def yaml_to_json(text: str) -> str:
    """The first YAML document as JSON, as sigs.k8s.io/yaml converts it (go-yaml v2 reading,
    keys as strings, encoding/json writing)."""
    return go_json(_from_yaml(parse_kustomization_yaml(text)))


def go_json(value: Any) -> str:
    """`value` as Go's encoding/json writes it: compact, keys sorted, `<`, `>` and `&` escaped."""
    if isinstance(value, dict):
        items = sorted((_key_text(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_go_string(k)}:{go_json(v)}" for k, v in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(go_json(v) for v in value) + "]"
    if isinstance(value, str):
        return _go_string(value)
    if isinstance(value, float):
        return go_float_text(value)
    return json.dumps(value)


def _go_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(char, escape)
    return encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def apply_json_patch(obj: dict[str, Any], operations: list[Operation]) -> dict[str, Any]:
    """The object with the operations applied in order; `obj` is not modified."""
    doc: Any = _to_json(obj)
    for operation in operations:
        op = operation.get("op")
        kind = op if isinstance(op, str) else "unknown"
        if kind == "add":
            doc = _add(doc, operation)
        elif kind == "remove":
            _remove(doc, operation)
        elif kind == "replace":
            doc = _replace(doc, operation)
        elif kind == "move":
            _move(doc, operation)
        elif kind == "test":
            _test(doc, operation)
        elif kind == "copy":
            _copy(doc, operation)
        else:
            raise KustomizeError(f"Unexpected kind: {kind}")
    result = _from_json(doc)
    if not isinstance(result, dict):
        raise KustomizeError(
            "json: cannot unmarshal array into Go value of type map[string]interface {}"
        )
    return result


# -- operations (github.com/evanphx/json-patch, as vendored by kustomize v5.5.0) --------------


def _add(doc: Any, op: Operation) -> Any:
    path = _string_field(op, "path")
    if path is None:
        raise KustomizeError("add operation failed to decode path: missing value")
    container, key = _find(doc, path)
    if container is None:
        raise KustomizeError(
            f'add operation does not apply: doc is missing path: "{path}": missing value'
        )
    try:
        _container_add(container, key, _value(op))
    except KustomizeError as exc:
        raise KustomizeError(f"error in add for path: '{path}': {exc}") from None
    return doc


def _remove(doc: Any, op: Operation) -> None:
    path = _string_field(op, "path")
    if path is None:
        raise KustomizeError("remove operation failed to decode path: missing value")
    container, key = _find(doc, path)
    if container is None:
        raise KustomizeError(
            f'remove operation does not apply: doc is missing path: "{path}": missing value'
        )
    try:
        _container_remove(container, key)
    except KustomizeError as exc:
        raise KustomizeError(f"error in remove for path: '{path}': {exc}") from None


def _replace(doc: Any, op: Operation) -> Any:
    path = _string_field(op, "path")
    if path is None:
        raise KustomizeError(
            "replace operation failed to decode path: operation missing path field: missing value"
        )
    if path == "":
        value = _value(op)
        # The library only replaces the document with an object or an array; anything else
        # it ignores without an error.
        return value if isinstance(value, dict | list) else doc
    container, key = _find(doc, path)
    if container is None:
        raise KustomizeError(
            f"replace operation does not apply: doc is missing path: {path}: missing value"
        )
    if isinstance(container, list):
        try:
            index = _array_index(container, key, size=len(container))
        except KustomizeError:
            raise KustomizeError(
                f"replace operation does not apply: doc is missing key: {path}: missing value"
            ) from None
        container[index] = _value(op)
    else:
        container[key] = _value(op)
    return doc


def _move(doc: Any, op: Operation) -> None:
    source = _string_field(op, "from")
    if source is None:
        raise KustomizeError(
            "move operation failed to decode from: operation, missing from field: missing value"
        )
    container, key = _find(doc, source)
    if container is None:
        raise KustomizeError(
            f"move operation does not apply: doc is missing from path: {source}: missing value"
        )
    try:
        value = _container_get(container, key)
        _container_remove(container, key)
    except KustomizeError as exc:
        raise KustomizeError(f"error in move for path: '{key}': {exc}") from None
    path = _string_field(op, "path")
    if path is None:
        raise KustomizeError(
            "move operation failed to decode path: operation missing path field: missing value"
        )
    container, key = _find(doc, path)
    if container is None:
        raise KustomizeError(
            f"move operation does not apply: doc is missing destination path: {path}: missing value"
        )
    try:
        _container_add(container, key, None if value is _ABSENT else value)
    except KustomizeError as exc:
        raise KustomizeError(f"error in move for path: '{path}': {exc}") from None


def _test(doc: Any, op: Operation) -> None:
    path = _string_field(op, "path")
    if path is None:
        raise KustomizeError(
            "test operation failed to decode path: operation missing path field: missing value"
        )
    expected = op.get("value", _ABSENT)
    if path == "":
        actual: Any = doc
    else:
        container, key = _find(doc, path)
        if container is None:
            raise KustomizeError(
                f"test operation does not apply: is missing path: {path}: missing value"
            )
        try:
            actual = _container_get(container, key)
        except KustomizeError as exc:
            raise KustomizeError(f"error in test for path: '{path}': {exc}") from None
        if actual is _ABSENT or actual is None:
            # A null or missing value passes only a test for null.
            if expected is None:
                return
            raise KustomizeError(f"testing value {path} failed: test failed")
    if expected is not _ABSENT and _equal(actual, expected):
        return
    raise KustomizeError(f"testing value {path} failed: test failed")


def _copy(doc: Any, op: Operation) -> None:
    source = _string_field(op, "from")
    if source is None:
        raise KustomizeError(
            "copy operation failed to decode from: operation, missing from field: missing value"
        )
    container, key = _find(doc, source)
    if container is None:
        raise KustomizeError(
            f"copy operation does not apply: doc is missing from path: {source}: missing value"
        )
    try:
        value = _container_get(container, key)
    except KustomizeError as exc:
        raise KustomizeError(f"error in copy for from: '{source}': {exc}") from None
    path = _string_field(op, "path")
    if path is None:
        raise KustomizeError("copy operation failed to decode path: missing value")
    container, key = _find(doc, path)
    if container is None:
        raise KustomizeError(
            f"copy operation does not apply: doc is missing destination path: {path}: missing value"
        )
    try:
        _container_add(container, key, None if value is _ABSENT else json.loads(json.dumps(value)))
    except KustomizeError as exc:
        raise KustomizeError(f"error while adding value during copy: {exc}") from None


# -- JSON pointers ------------------------------------------------------------------------------


def _find(doc: Any, path: str) -> tuple[Any, str]:
    """The container holding the last token of `path` and that token; (None, "") when a part
    of the way is missing."""
    parts = path.split("/")
    if len(parts) < 2:
        return None, ""
    container = doc
    for part in parts[1:-1]:
        try:
            container = _container_get(container, _unescape(part))
        except KustomizeError:
            return None, ""
        if not isinstance(container, dict | list):
            return None, ""
    return container, _unescape(parts[-1])


def _unescape(token: str) -> str:
    # One pass, left to right: "~01" is "~1", as RFC 6901 wants.
    return re.sub(r"~[01]", lambda m: "/" if m.group() == "~1" else "~", token)


def _container_get(container: Any, key: str) -> Any:
    if isinstance(container, dict):
        return container.get(key, _ABSENT)
    return container[_array_index(container, key, size=len(container))]


def _container_add(container: Any, key: str, value: Any) -> None:
    if isinstance(container, dict):
        container[key] = value
        return
    if key == "-":
        container.append(value)
        return
    index = _atoi(key, context=f"value was not a proper array index: '{key}': ")
    size = len(container) + 1
    if index >= size or index < -size:
        raise KustomizeError(f"Unable to access invalid index: {index}: invalid index referenced")
    if index < 0:
        index += size
    container.insert(index, value)


def _container_remove(container: Any, key: str) -> None:
    if isinstance(container, dict):
        if key not in container:
            raise KustomizeError(f"Unable to remove nonexistent key: {key}: missing value")
        del container[key]
        return
    del container[_array_index(container, key, size=len(container))]


def _array_index(container: list[Any], key: str, *, size: int) -> int:
    index = _atoi(key)
    if index >= size or index < -size:
        raise KustomizeError(f"Unable to access invalid index: {index}: invalid index referenced")
    return index + size if index < 0 else index


def _atoi(key: str, context: str = "") -> int:
    if not re.fullmatch(r"[+-]?[0-9]+", key):
        raise KustomizeError(f'{context}strconv.Atoi: parsing "{key}": invalid syntax')
    value = int(key)
    if not -(2**63) <= value < 2**63:
        raise KustomizeError(f'{context}strconv.Atoi: parsing "{key}": value out of range')
    return value


def _string_field(op: Operation, name: str) -> str | None:
    value = op.get(name)
    return value if isinstance(value, str) else None


def _value(op: Operation) -> Any:
    return json.loads(json.dumps(op.get("value")))


# -- equality of the `test` operation -----------------------------------------------------------


def _equal(actual: Any, expected: Any) -> bool:
    """The library compares objects key by key, arrays element by element and scalars by their
    JSON text, so 1 equals 1.0 and "1" does not equal 1."""
    if isinstance(actual, dict):
        if expected is None:
            return not actual
        if not isinstance(expected, dict) or set(actual) != set(expected):
            return False
        return all(_equal_or_both_null(actual[k], expected[k]) for k in actual)
    if isinstance(actual, list):
        if expected is None:
            return not actual
        if not isinstance(expected, list) or len(actual) != len(expected):
            return False
        return all(_equal_or_both_null(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(expected, dict | list) or expected is None:
        return False
    return _scalar_json(actual) == _scalar_json(expected)


def _equal_or_both_null(actual: Any, expected: Any) -> bool:
    if actual is None or expected is None:
        return actual is None and expected is None
    return _equal(actual, expected)


def _scalar_json(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return go_float_text(value)
    return json.dumps(value, ensure_ascii=False)


# -- through JSON and back ----------------------------------------------------------------------


def go_float_text(value: float) -> str:
    """A float64 as Go's encoding/json writes it: shortest digits, exponent only below 1e-6
    and from 1e21 on (`1e-7`, `1e+21`)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    number = Decimal(repr(value)).normalize()
    if 1e-6 <= abs(value) < 1e21:
        return format(number, "f")
    sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    mantissa = str(digits[0])
    if len(digits) > 1:
        mantissa += "." + "".join(map(str, digits[1:]))
    power = exponent + len(digits) - 1
    return f"{'-' if sign else ''}{mantissa}e{'+' if power >= 0 else '-'}{abs(power)}"


def _to_json(value: Any) -> Any:
    """The object as kustomize hands it to the library: encoded as JSON (keys are strings;
    timestamps are already RFC 3339 strings, as `_yaml` reads them)."""
    if isinstance(value, dict):
        return {_key_text(k): _to_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_json(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        raise KustomizeError(f"json: unsupported value: {go_float_text(value)}")
    return value


def _from_json(value: Any) -> Any:
    """The patched document as kustomize reads it back: every number through float64."""
    if isinstance(value, dict):
        return {k: _from_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    text = go_float_text(float(value))
    return int(text) if re.fullmatch(r"-?[0-9]+", text) else float(text)


def _from_yaml(value: Any) -> Any:
    """A YAML value as sigs.k8s.io/yaml converts it to JSON: keys become strings."""
    if isinstance(value, dict):
        return {_key_text(k): _from_yaml(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_yaml(v) for v in value]
    return value


def _key_text(key: Any) -> str:
    if isinstance(key, bool):
        return "true" if key else "false"
    if key is None:
        return "null"
    if isinstance(key, float):
        return go_float_text(key)
    return str(key)

"""Typed models of Kubernetes API types, each declared once.

A model is a frozen, keyword-only dataclass whose fields carry their API facts through `field()`:
JSON name, description, default, enum, pattern, bounds, format and `x-kubernetes-*` markers.
From that one declaration come the OpenAPI v3 schema a CRD publishes (`openapi_schema`), the
parser that turns the API server's dicts into typed values with defaults applied (`from_dict`,
which checks the same constraints the schema states) and the way back (`to_dict`).

Python types map to schema types: `str`, `bool`, `int` (int64), `float`, `datetime` (date-time),
`Duration` (a string with Flux's duration pattern), `Literal[...]` (an enum), `tuple[X, ...]` or
`list[X]` (an array), `dict[str, X]` (a map), `Any` (any JSON, kept as is), `X | None`, and other
models (objects). A field is required unless it has a default; `field(required=...)` overrides.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import inspect
import json
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar, Literal, Self, dataclass_transform

from ._duration import DURATION_PATTERN, Duration, InvalidDuration
from ._errors import InvalidObject

_KEY = "tidegate.api"
_MISSING: Any = dataclasses.MISSING


@dataclasses.dataclass(frozen=True)
class Rule:
    """A CEL validation rule, published as an `x-kubernetes-validations` entry.

    The API server evaluates it on every write; `from_dict` does not (it has no CEL engine).
    """

    rule: str
    message: str = ""
    message_expression: str = ""
    reason: str = ""
    field_path: str = ""

    def to_schema(self) -> dict[str, Any]:
        entry = {
            "rule": self.rule,
            "message": self.message,
            "messageExpression": self.message_expression,
            "reason": self.reason,
            "fieldPath": self.field_path,
        }
        return {key: value for key, value in sorted(entry.items()) if value}


@dataclasses.dataclass(frozen=True)
class FieldInfo:
    """The API facts of one field (see `field`)."""

    json: str | None = None
    description: str = ""
    required: bool | None = None
    schema_default: bool = False
    enum: tuple[Any, ...] | None = None
    pattern: str | None = None
    format: str | None = None
    minimum: float | None = None
    maximum: float | None = None
    min_length: int | None = None
    max_length: int | None = None
    min_items: int | None = None
    max_items: int | None = None
    nullable: bool = False
    preserve_unknown_fields: bool = False
    embedded_resource: bool = False
    list_type: str | None = None
    list_map_keys: tuple[str, ...] = ()
    map_type: str | None = None
    validations: tuple[Rule, ...] = ()
    omit_empty: bool = True
    extra: tuple[tuple[str, Any], ...] = ()


def field(
    *,
    default: Any = _MISSING,
    default_factory: Callable[[], Any] | Any = _MISSING,
    json: str | None = None,
    description: str = "",
    required: bool | None = None,
    schema_default: bool = False,
    enum: Sequence[Any] | None = None,
    pattern: str | None = None,
    format: str | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    min_length: int | None = None,
    max_length: int | None = None,
    min_items: int | None = None,
    max_items: int | None = None,
    nullable: bool = False,
    preserve_unknown_fields: bool = False,
    embedded_resource: bool = False,
    list_type: Literal["atomic", "set", "map"] | None = None,
    list_map_keys: Sequence[str] = (),
    map_type: Literal["atomic", "granular"] | None = None,
    validations: Sequence[Rule] = (),
    omit_empty: bool = True,
    extra: Mapping[str, Any] | None = None,
) -> Any:
    """Declare a model field with its API facts.

    `default`/`default_factory` give the value when the field is absent. With
    `schema_default=True` that default is also published in the schema, so the API server fills
    it in (Flux's `+kubebuilder:default`). `json` overrides the JSON name (by default the field
    name in camelCase). `omit_empty=False` keeps a zero value of an optional field in `to_dict`
    (Go's fields without `omitempty`). `extra` adds schema keys verbatim.
    """
    if schema_default and default is _MISSING and default_factory is _MISSING:
        raise TypeError("schema_default=True needs a default or a default_factory")
    info = FieldInfo(
        json=json,
        description=_prose(description) if description else "",
        required=required,
        schema_default=schema_default,
        enum=tuple(enum) if enum is not None else None,
        pattern=pattern,
        format=format,
        minimum=minimum,
        maximum=maximum,
        min_length=min_length,
        max_length=max_length,
        min_items=min_items,
        max_items=max_items,
        nullable=nullable,
        preserve_unknown_fields=preserve_unknown_fields,
        embedded_resource=embedded_resource,
        list_type=list_type,
        list_map_keys=tuple(list_map_keys),
        map_type=map_type,
        validations=tuple(validations),
        omit_empty=omit_empty,
        extra=tuple(sorted((extra or {}).items())),
    )
    result: Any = dataclasses.field(
        default=default, default_factory=default_factory, metadata={_KEY: info}
    )
    return result


@dataclass_transform(kw_only_default=True, frozen_default=True, field_specifiers=(field,))
class Model:
    """Base of API types: each subclass becomes a frozen, keyword-only dataclass.

    The class docstring is the type's description in the schema. Class keywords:
    `opaque=True` publishes the type as a bare `{type: object}` (as CRDs do for `metadata`);
    `validations=[Rule(...)]` adds CEL rules at the type's level.
    """

    _description: ClassVar[str] = ""
    _opaque: ClassVar[bool] = False
    _validations: ClassVar[tuple[Rule, ...]] = ()

    def __init_subclass__(
        cls,
        *,
        opaque: bool = False,
        validations: Sequence[Rule] = (),
        **kwargs: Any,
    ) -> None:
        super().__init_subclass__(**kwargs)
        doc = cls.__dict__.get("__doc__")
        cls._description = _prose(doc) if doc else ""
        cls._opaque = opaque
        cls._validations = tuple(validations)
        dataclasses.dataclass(frozen=True, kw_only=True)(cls)

    @classmethod
    def openapi_schema(cls) -> dict[str, Any]:
        """The type's OpenAPI v3 schema, structural as CRDs require, keys sorted."""
        if cls._opaque:
            return {"type": "object"}
        schema: dict[str, Any] = {}
        if cls._description:
            schema["description"] = cls._description
        fields = _fields(cls)
        if fields:
            # Each caller gets its own copy: the YAML writer and tests may change it.
            schema["properties"] = {f.json: _copy(f.schema) for f in sorted(fields, key=_json_name)}
        required = sorted(f.json for f in fields if f.required)
        if required:
            schema["required"] = required
        schema["type"] = "object"
        if cls._validations:
            schema["x-kubernetes-validations"] = [rule.to_schema() for rule in cls._validations]
        return schema

    @classmethod
    def from_dict(cls, data: Any, path: str = "") -> Self:
        """Parse JSON data (as the API server sends it) into this type, applying defaults.

        Raises `InvalidObject` naming the field (`spec.ref.tag`) when a value has the wrong
        type, breaks a constraint of the schema, or a required value is missing. Unknown
        fields are ignored, as the API server prunes them.
        """
        if not isinstance(data, Mapping):
            raise InvalidObject(path, f"must be an object, not {_json_type(data)}")
        values: dict[str, Any] = {}
        for f in _fields(cls):
            where = f"{path}.{f.json}" if path else f.json
            raw = data.get(f.json)
            if raw is None:
                if f.has_default:
                    continue
                if not f.required and f.model is not None:
                    # An omitted struct (Go's non-pointer `omitempty` struct): its own
                    # defaults and required fields still apply.
                    raw = {}
                else:
                    raise InvalidObject(where, "required value")
            values[f.name] = _decode(f.type, raw, where, f.schema)
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """The JSON form: absent optional values and, like Go's `omitempty`, zero values of
        optional fields are left out; durations keep the text they were written with."""
        out: dict[str, Any] = {}
        for f in _fields(type(self)):
            value = getattr(self, f.name)
            if value is None:
                continue
            if not f.required and f.info.omit_empty and _is_empty(value):
                continue
            out[f.json] = _encode(value)
        return out


@dataclasses.dataclass(frozen=True)
class _Field:
    name: str
    json: str
    type: Any
    info: FieldInfo
    required: bool
    has_default: bool
    model: type[Model] | None
    definition: dataclasses.Field[Any] = dataclasses.field(repr=False)

    def default_value(self) -> Any:
        if self.definition.default is not _MISSING:
            return self.definition.default
        factory = typing.cast(Callable[[], Any], self.definition.default_factory)
        return factory()

    @functools.cached_property
    def schema(self) -> dict[str, Any]:
        """The field's schema, computed once and shared: copy before changing it."""
        return _field_schema(self)


def _json_name(f: _Field) -> str:
    return f.json


_PLANS: dict[type[Model], tuple[_Field, ...]] = {}


def _fields(cls: type[Model]) -> tuple[_Field, ...]:
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = _plan(cls)
    return plan


def _plan(cls: type[Model]) -> tuple[_Field, ...]:
    # Resolved on first use, not at class creation: by then every type the hints name exists.
    hints = typing.get_type_hints(cls)
    out = []
    for definition in dataclasses.fields(cls):  # type: ignore[arg-type]
        info = definition.metadata.get(_KEY) or FieldInfo()
        has_default = (
            definition.default is not _MISSING or definition.default_factory is not _MISSING
        )
        tp = hints[definition.name]
        inner = _strip_optional(tp)
        model = inner if isinstance(inner, type) and issubclass(inner, Model) else None
        out.append(
            _Field(
                name=definition.name,
                json=info.json or _camel(definition.name),
                type=tp,
                info=info,
                required=info.required if info.required is not None else not has_default,
                has_default=has_default,
                model=model,
                definition=definition,
            )
        )
    return tuple(out)


def _prose(text: str) -> str:
    """Docstring text as a description: lines of a paragraph joined, paragraphs kept."""
    paragraphs = inspect.cleandoc(text).split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


# -- schema ---------------------------------------------------------------------------------


_SCHEMA_KEYS = (
    # FieldInfo attribute → OpenAPI / Kubernetes schema key
    ("pattern", "pattern"),
    ("format", "format"),
    ("minimum", "minimum"),
    ("maximum", "maximum"),
    ("min_length", "minLength"),
    ("max_length", "maxLength"),
    ("min_items", "minItems"),
    ("max_items", "maxItems"),
    ("list_type", "x-kubernetes-list-type"),
    ("map_type", "x-kubernetes-map-type"),
)


def _field_schema(f: _Field) -> dict[str, Any]:
    schema = _type_schema(f.type)
    info = f.info
    if info.description:
        # A field's own description replaces its type's, as controller-gen does.
        schema["description"] = info.description
    if info.schema_default:
        schema["default"] = _encode(f.default_value())
    if info.enum is not None:
        schema["enum"] = list(info.enum)
    for attribute, key in _SCHEMA_KEYS:
        value = getattr(info, attribute)
        if value is not None:
            schema[key] = value
    if info.list_map_keys:
        schema["x-kubernetes-list-map-keys"] = list(info.list_map_keys)
    if info.nullable:
        schema["nullable"] = True
    if info.preserve_unknown_fields:
        schema["x-kubernetes-preserve-unknown-fields"] = True
    if info.embedded_resource:
        schema["x-kubernetes-embedded-resource"] = True
    if info.validations:
        rules = schema.get("x-kubernetes-validations", [])
        schema["x-kubernetes-validations"] = rules + [r.to_schema() for r in info.validations]
    schema.update(info.extra)
    return dict(sorted(schema.items()))


def _copy(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _copy(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_copy(item) for item in value]
    return value


def _type_schema(tp: Any) -> dict[str, Any]:
    tp = _strip_optional(tp)
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any:
        return {"x-kubernetes-preserve-unknown-fields": True}
    if tp is str:
        return {"type": "string"}
    if tp is bool:
        return {"type": "boolean"}
    if tp is int:
        return {"type": "integer", "format": "int64"}
    if tp is float:
        return {"type": "number"}
    if tp is dt.datetime:
        return {"type": "string", "format": "date-time"}
    if tp is Duration:
        return {"type": "string", "pattern": DURATION_PATTERN}
    if origin is Literal:
        return {"type": _json_type(args[0]), "enum": list(args)}
    if origin in (list, tuple):
        return {"type": "array", "items": _type_schema(args[0])}
    if origin is dict:
        if args[1] is Any:
            return {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        return {"type": "object", "additionalProperties": _type_schema(args[1])}
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp.openapi_schema()
    raise TypeError(f"no OpenAPI schema for {tp!r}")


def _strip_optional(tp: Any) -> Any:
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        rest = [arg for arg in typing.get_args(tp) if arg is not type(None)]
        if len(rest) != 1:
            raise TypeError(f"unsupported union {tp!r}: only `X | None` is")
        return rest[0]
    return tp


# -- parsing --------------------------------------------------------------------------------

_EXPECTED = {
    str: "a string",
    bool: "a boolean",
    int: "an integer",
    float: "a number",
    dt.datetime: "a date-time string",
    Duration: "a duration string",
}


def _decode(tp: Any, raw: Any, where: str, schema: Mapping[str, Any]) -> Any:
    _check(raw, where, schema)
    tp = _strip_optional(tp)
    origin = typing.get_origin(tp)
    if tp is Any:
        return raw
    if isinstance(tp, type) and issubclass(tp, Model):
        return tp.from_dict(raw, where)
    if origin is Literal:
        choices = typing.get_args(tp)
        if raw not in choices or type(raw) is not type(choices[0]):
            supported = ", ".join(json.dumps(choice) for choice in choices)
            raise InvalidObject(
                where, f"unsupported value {json.dumps(raw)}: supported values: {supported}"
            )
        return raw
    if origin in (list, tuple):
        if not isinstance(raw, list):
            raise InvalidObject(where, f"must be an array, not {_json_type(raw)}")
        item_type = typing.get_args(tp)[0]
        items_schema = schema.get("items", {})
        items = [
            _decode(item_type, item, f"{where}[{index}]", items_schema)
            for index, item in enumerate(raw)
        ]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(raw, Mapping):
            raise InvalidObject(where, f"must be an object, not {_json_type(raw)}")
        value_type = typing.get_args(tp)[1]
        values_schema = schema.get("additionalProperties", {})
        return {
            str(key): _decode(value_type, value, f"{where}.{key}", values_schema)
            for key, value in raw.items()
        }
    if tp not in _EXPECTED:
        raise TypeError(f"cannot parse {tp!r}")
    if not _is_json_of(tp, raw):
        raise InvalidObject(where, f"must be {_EXPECTED[tp]}, not {_json_type(raw)}")
    if tp is float:
        return float(raw)
    if tp is Duration:
        try:
            return Duration(raw)
        except InvalidDuration as exc:
            raise InvalidObject(where, f"invalid duration {json.dumps(raw)}: {exc}") from None
    if tp is dt.datetime:
        return _parse_time(raw, where)
    return raw


def _is_json_of(tp: Any, raw: Any) -> bool:
    if tp is bool:
        return isinstance(raw, bool)
    if tp is int:
        return isinstance(raw, int) and not isinstance(raw, bool)
    if tp is float:
        return isinstance(raw, int | float) and not isinstance(raw, bool)
    return isinstance(raw, str)


def _check(raw: Any, where: str, schema: Mapping[str, Any]) -> None:
    """The scalar constraints of `schema` that the API server enforces, checked on `raw`."""
    enum = schema.get("enum")
    if enum is not None and raw not in enum:
        supported = ", ".join(json.dumps(choice) for choice in enum)
        raise InvalidObject(
            where, f"unsupported value {json.dumps(raw)}: supported values: {supported}"
        )
    if isinstance(raw, str):
        pattern = schema.get("pattern")
        if pattern is not None and not _compiled(pattern).search(raw):
            raise InvalidObject(where, f"invalid value {json.dumps(raw)}: should match '{pattern}'")
        if "minLength" in schema and len(raw) < schema["minLength"]:
            raise InvalidObject(
                where, f"invalid value {json.dumps(raw)}: at least {schema['minLength']} chars"
            )
        if "maxLength" in schema and len(raw) > schema["maxLength"]:
            raise InvalidObject(where, f"too long: at most {schema['maxLength']} chars")
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if "minimum" in schema and raw < schema["minimum"]:
            raise InvalidObject(where, f"invalid value {raw}: should be >= {schema['minimum']}")
        if "maximum" in schema and raw > schema["maximum"]:
            raise InvalidObject(where, f"invalid value {raw}: should be <= {schema['maximum']}")
    if isinstance(raw, list):
        if "minItems" in schema and len(raw) < schema["minItems"]:
            raise InvalidObject(where, f"should have at least {schema['minItems']} items")
        if "maxItems" in schema and len(raw) > schema["maxItems"]:
            raise InvalidObject(where, f"should have at most {schema['maxItems']} items")


@functools.cache
def _compiled(pattern: str) -> re.Pattern[str]:
    # OpenAPI patterns are unanchored (ECMA-262 `test`): search, not match.
    return re.compile(pattern)


def _parse_time(raw: str, where: str) -> dt.datetime:
    try:
        parsed = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidObject(
            where, f"invalid value {json.dumps(raw)}: should be an RFC 3339 date-time"
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)


def format_time(value: dt.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes `metav1.Time`."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# -- serialising ----------------------------------------------------------------------------


def _encode(value: Any) -> Any:
    if isinstance(value, Model):
        return value.to_dict()
    if isinstance(value, Duration):  # before floats: a Duration is one
        return value.text
    if isinstance(value, dt.datetime):
        return format_time(value)
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    if isinstance(value, Mapping):
        return {str(key): _encode(item) for key, item in value.items()}
    return value


def _is_empty(value: Any) -> bool:
    if type(value) is bool:
        return value is False
    if type(value) in (int, float):
        return bool(value == 0)
    return isinstance(value, str | list | tuple | dict) and not value


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list | tuple):
        return "array"
    return "object"

"""Kustomization files: finding one in a directory, reading it as kustomize reads it
(sigs.k8s.io/yaml, then encoding/json with unknown fields refused, field names matched
without regard to case) and checking it, with kustomize's wording for every error."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from ._errors import KustomizeError, json_kind
from ._loader import FileLoader
from ._yaml import MalformedYAML, parse_kustomization_yaml

__all__ = [
    "COMPONENT_KIND",
    "COMPONENT_VERSION",
    "KUSTOMIZATION_FILE_NAMES",
    "KUSTOMIZATION_KIND",
    "KUSTOMIZATION_VERSION",
    "Kustomization",
    "decode_kustomization",
    "load_kustomization",
]

KUSTOMIZATION_FILE_NAMES = ("kustomization.yaml", "kustomization.yml", "Kustomization")
KUSTOMIZATION_VERSION = "kustomize.config.k8s.io/v1beta1"
KUSTOMIZATION_KIND = "Kustomization"
COMPONENT_VERSION = "kustomize.config.k8s.io/v1alpha1"
COMPONENT_KIND = "Component"

_EDIT_FIX = "Run 'kustomize edit fix' to update your Kustomization automatically."
# kustomize v5 prints these on stderr and goes on with the build.
_DEPRECATIONS = {
    "bases": f"# Warning: 'bases' is deprecated. Please use 'resources' instead. {_EDIT_FIX}",
    "commonLabels": (
        f"# Warning: 'commonLabels' is deprecated. Please use 'labels' instead. {_EDIT_FIX}"
    ),
    "imageTags": f"# Warning: 'imageTags' is deprecated. Please use 'images' instead. {_EDIT_FIX}",
    "patchesJson6902": (
        f"# Warning: 'patchesJson6902' is deprecated. Please use 'patches' instead. {_EDIT_FIX}"
    ),
    "patchesStrategicMerge": (
        "# Warning: 'patchesStrategicMerge' is deprecated. Please use 'patches' instead. "
        + _EDIT_FIX
    ),
    "vars": (
        "# Warning: 'vars' is deprecated. Please use 'replacements' instead. [EXPERIMENTAL] "
        + _EDIT_FIX
    ),
}


# ---------------------------------------------------------------------------------------------
# The Go types of api/types, as encoding/json sees them. A type is a scalar name ("string",
# "bool", "int64", "int", "any"), a struct name, or a tuple: ("list", T), ("map", T) for
# map[string]T, ("ptr", T).

_Type = Any
_S = "string"
_STRINGS = ("list", "string")
_STRING_MAP = ("map", "string")

_GVK = {"group": _S, "version": _S, "kind": _S}
_RES_ID = {**_GVK, "name": _S, "namespace": _S}
_GENERATOR_ARGS = {
    "namespace": _S,
    "name": _S,
    "behavior": _S,
    "literals": _STRINGS,
    "files": _STRINGS,
    "envs": _STRINGS,
    "env": _S,
    "options": ("ptr", "GeneratorOptions"),
}

_STRUCTS: dict[str, dict[str, _Type]] = {
    "Kustomization": {
        "kind": _S,
        "apiVersion": _S,
        "metadata": ("ptr", "ObjectMeta"),
        "openapi": _STRING_MAP,
        "namePrefix": _S,
        "nameSuffix": _S,
        "namespace": _S,
        "commonLabels": _STRING_MAP,
        "labels": ("list", "Label"),
        "commonAnnotations": _STRING_MAP,
        "patchesStrategicMerge": ("list", "PatchStrategicMerge"),
        "patchesJson6902": ("list", "Patch"),
        "patches": ("list", "Patch"),
        "images": ("list", "Image"),
        "imageTags": ("list", "Image"),
        "replacements": ("list", "ReplacementField"),
        "replicas": ("list", "Replica"),
        "vars": ("list", "Var"),
        "sortOptions": ("ptr", "SortOptions"),
        "resources": _STRINGS,
        "components": _STRINGS,
        "crds": _STRINGS,
        "bases": _STRINGS,
        "configMapGenerator": ("list", "ConfigMapArgs"),
        "secretGenerator": ("list", "SecretArgs"),
        "helmGlobals": ("ptr", "any"),
        "helmCharts": ("list", "any"),
        "helmChartInflationGenerator": ("list", "any"),
        "generatorOptions": ("ptr", "GeneratorOptions"),
        "configurations": _STRINGS,
        "generators": _STRINGS,
        "transformers": _STRINGS,
        "validators": _STRINGS,
        "buildMetadata": _STRINGS,
    },
    "ObjectMeta": {
        "name": _S,
        "namespace": _S,
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "Label": {
        "pairs": _STRING_MAP,
        "includeSelectors": "bool",
        "includeTemplates": "bool",
        "fields": ("list", "FieldSpec"),
    },
    "FieldSpec": {**_GVK, "path": _S, "create": "bool"},
    "Patch": {
        "path": _S,
        "patch": _S,
        "target": ("ptr", "Selector"),
        "options": ("ptr", "PatchArgs"),
    },
    "PatchArgs": {"allowNameChange": "bool", "allowKindChange": "bool"},
    "Selector": {**_RES_ID, "annotationSelector": _S, "labelSelector": _S},
    "Image": {"name": _S, "newName": _S, "tagSuffix": _S, "newTag": _S, "digest": _S},
    "ReplacementField": {
        "source": ("ptr", "SourceSelector"),
        "targets": ("list", ("ptr", "TargetSelector")),
        "sourceValue": ("ptr", _S),
        "path": _S,
    },
    "SourceSelector": {**_RES_ID, "fieldPath": _S, "options": ("ptr", "FieldOptions")},
    "TargetSelector": {
        "select": ("ptr", "Selector"),
        "reject": ("list", ("ptr", "Selector")),
        "fieldPaths": _STRINGS,
        "options": ("ptr", "FieldOptions"),
    },
    "FieldOptions": {"delimiter": _S, "index": "int", "encoding": _S, "create": "bool"},
    "Replica": {"name": _S, "count": "int64"},
    "Var": {"name": _S, "objref": "Target", "fieldref": "FieldSelector"},
    "Target": {"apiVersion": _S, **_GVK, "name": _S, "namespace": _S},
    "FieldSelector": {"fieldPath": _S},
    "SortOptions": {"order": "SortOrder", "legacySortOptions": ("ptr", "LegacySortOptions")},
    "LegacySortOptions": {"orderFirst": _STRINGS, "orderLast": _STRINGS},
    "ConfigMapArgs": _GENERATOR_ARGS,
    "SecretArgs": {**_GENERATOR_ARGS, "type": _S},
    "GeneratorOptions": {
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
        "disableNameSuffixHash": "bool",
        "immutable": "bool",
    },
}
# Named string types: read as strings, named by their Go name in errors.
_STRING_TYPES = {"PatchStrategicMerge", "SortOrder"}
_INT_RANGES = {"int64": (-(2**63), 2**63 - 1), "int": (-(2**63), 2**63 - 1)}


def _go_type(kind: _Type) -> str:
    if isinstance(kind, tuple):
        wrapper, inner = kind
        if wrapper == "list":
            return "[]" + _go_type(inner)
        if wrapper == "map":
            return "map[string]" + _go_type(inner)
        return "*" + _go_type(inner)
    if kind == "any":
        return "interface {}"
    if kind in _STRUCTS or kind in _STRING_TYPES:
        return f"types.{kind}"
    return str(kind)


def _json_number(value: float) -> str:
    """A float as encoding/json writes it (for `number 3.5` in errors)."""
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    return repr(value)


class _Decoder:
    """encoding/json's Decode with DisallowUnknownFields: the first error is kept."""

    def __init__(self) -> None:
        self.error: str | None = None

    def fail(self, message: str) -> None:
        if self.error is None:
            self.error = message

    def mismatch(self, value: Any, kind: _Type, struct: str, path: list[str]) -> None:
        got = json_kind(value)
        if got == "number" and kind in _INT_RANGES and isinstance(value, float):
            got = f"number {_json_number(value)}"
        where = f"Go struct field {struct}.{'.'.join(path)}" if path else "Go value"
        self.fail(f"json: cannot unmarshal {got} into {where} of type {_go_type(kind)}")

    def decode(self, value: Any, kind: _Type, struct: str, path: list[str]) -> Any:
        if value is None:
            return None
        if isinstance(kind, tuple):
            wrapper, inner = kind
            if wrapper == "ptr":
                return self.decode(value, inner, struct, path)
            if wrapper == "list":
                if not isinstance(value, list):
                    self.mismatch(value, kind, struct, path)
                    return None
                items = [self.decode(item, inner, struct, path) for item in value]
                return [_zero(inner) if item is None else item for item in items]
            if not isinstance(value, dict):
                self.mismatch(value, kind, struct, path)
                return None
            decoded = {
                str(key): self.decode(item, inner, struct, path)
                for key, item in sorted(value.items(), key=lambda kv: str(kv[0]))
            }
            return {k: _zero(inner) if v is None else v for k, v in decoded.items()}
        if kind == "any":
            return value
        if kind in _STRUCTS:
            if not isinstance(value, dict):
                self.mismatch(value, kind, struct, path)
                return None
            return self.decode_struct(value, kind, path)
        if kind == "string" or kind in _STRING_TYPES:
            if not isinstance(value, str):
                self.mismatch(value, kind, struct, path)
                return None
            return value
        if kind == "bool":
            if not isinstance(value, bool):
                self.mismatch(value, kind, struct, path)
                return None
            return value
        low, high = _INT_RANGES[kind]
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.mismatch(value, kind, struct, path)
            return None
        if isinstance(value, float) and (not math.isfinite(value) or value != int(value)):
            self.mismatch(value, kind, struct, path)
            return None
        number = int(value)
        if not low <= number <= high:
            self.mismatch(float(value), kind, struct, path)
            return None
        return number

    def decode_struct(self, value: dict[Any, Any], name: str, path: list[str]) -> dict[str, Any]:
        fields = _STRUCTS[name]
        folded = {key.lower(): key for key in fields}
        result: dict[str, Any] = {}
        for key, item in sorted(value.items(), key=lambda kv: str(kv[0])):
            key = str(key)
            canonical = key if key in fields else folded.get(key.lower())
            if canonical is None:
                self.fail(f"json: unknown field {_go_quote(key)}")
                continue
            decoded = self.decode(item, fields[canonical], name, [*path, canonical])
            if decoded is not None:
                result[canonical] = decoded
        return result


def _zero(kind: _Type) -> Any:
    if kind == "string" or kind in _STRING_TYPES:
        return ""
    if kind == "bool":
        return False
    if kind in _INT_RANGES:
        return 0
    if isinstance(kind, tuple) or kind == "any":
        return None
    return {}


def _go_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def decode_kustomization(data: Any) -> dict[str, Any]:
    """The content of a kustomization file as kustomize's types.Kustomization: field names
    made canonical, types checked, unknown fields refused (`invalid Kustomization: …`)."""
    decoder = _Decoder()
    if data is None:
        return {}
    if not isinstance(data, dict):
        decoder.fail(
            f"json: cannot unmarshal {json_kind(data)} into Go value of type types.Kustomization"
        )
        result: dict[str, Any] = {}
    else:
        result = decoder.decode_struct(data, "Kustomization", [])
    if decoder.error is not None:
        raise KustomizeError(f"invalid Kustomization: {decoder.error}")
    return result


# ---------------------------------------------------------------------------------------------


@dataclass
class Kustomization:
    """A kustomization file, read and fixed as kustomize v5 fixes it (`bases` appended to
    `resources`, `imageTags` to `images`, `env` to `envs`), with its deprecation warnings."""

    fields: dict[str, Any]
    file_name: str = "kustomization.yaml"
    warnings: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return str(self.fields.get("kind", KUSTOMIZATION_KIND))

    @property
    def is_component(self) -> bool:
        return self.kind == COMPONENT_KIND

    def get(self, name: str, default: Any = None) -> Any:
        return self.fields.get(name, default)

    def list(self, name: str) -> list[Any]:
        return list(self.fields.get(name) or [])

    @classmethod
    def from_fields(
        cls, fields: dict[str, Any], file_name: str = "kustomization.yaml", directory: str = ""
    ) -> Kustomization:
        """Fix and check decoded fields (kustomize's FixKustomization, CheckEmpty and
        EnforceFields)."""
        fields = dict(fields)
        warnings = [message for name, message in _DEPRECATIONS.items() if name in fields]
        kind = fields.setdefault("kind", "") or KUSTOMIZATION_KIND
        fields["kind"] = kind
        if not fields.get("apiVersion"):
            default = COMPONENT_VERSION if kind == COMPONENT_KIND else KUSTOMIZATION_VERSION
            fields["apiVersion"] = default
            given_version = ""
        else:
            given_version = fields["apiVersion"]
        if "bases" in fields:
            bases = fields.pop("bases")
            if bases is not None:
                fields["resources"] = [*(fields.get("resources") or []), *bases]
        if "imageTags" in fields:
            tags = fields.pop("imageTags")
            if tags is not None:
                fields["images"] = [*(fields.get("images") or []), *tags]
        for generator in ("configMapGenerator", "secretGenerator"):
            for args in fields.get(generator) or []:
                if args.get("env"):
                    args["envs"] = [*(args.get("envs") or []), args.pop("env")]
                else:
                    args.pop("env", None)
        if all(
            _is_zero(value) for name, value in fields.items() if name not in ("kind", "apiVersion")
        ):
            raise KustomizeError("kustomization.yaml is empty")
        errors = []
        if kind not in (KUSTOMIZATION_KIND, COMPONENT_KIND):
            errors.append(f"kind should be {KUSTOMIZATION_KIND} or {COMPONENT_KIND}")
        required = COMPONENT_VERSION if kind == COMPONENT_KIND else KUSTOMIZATION_VERSION
        if given_version and given_version != required:
            errors.append(f"apiVersion for {kind} should be {required}")
        if errors:
            raise KustomizeError(
                f"Failed to read kustomization file under {directory}:\n" + "\n".join(errors)
            )
        return cls(fields=fields, file_name=file_name, warnings=warnings)


def _is_zero(value: Any) -> bool:
    """Go's zero value: "" / false / 0; present lists and maps count, even empty."""
    return (
        value is None
        or value == ""
        or value is False
        or (isinstance(value, int) and not isinstance(value, bool) and value == 0)
    )


def find_kustomization_file(loader: FileLoader) -> str:
    """The name of the one kustomization file in the loader's directory."""
    found = [name for name in KUSTOMIZATION_FILE_NAMES if loader.is_file(name)]
    if not found:
        raise KustomizeError(
            "unable to find one of 'kustomization.yaml', 'kustomization.yml' or "
            f"'Kustomization' in directory '{loader.directory}'"
        )
    if len(found) > 1:
        raise KustomizeError(f"Found multiple kustomization files under: {loader.directory}\n")
    return found[0]


def parse_kustomization(text: str, file_name: str, directory: str) -> Kustomization:
    try:
        data = parse_kustomization_yaml(text)
    except MalformedYAML as exc:
        raise KustomizeError(f"invalid Kustomization: {exc}") from None
    return Kustomization.from_fields(decode_kustomization(data), file_name, directory)


def load_kustomization(loader: FileLoader) -> Kustomization:
    """The kustomization of the loader's directory (kustomize's KustTarget.Load)."""
    file_name = find_kustomization_file(loader)
    return parse_kustomization(loader.read_text(file_name), file_name, loader.directory)

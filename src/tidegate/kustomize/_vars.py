"""kustomize's `vars` (deprecated in v5 in favour of `replacements`, still supported): a var
names a field of one object (`metadata.name` by default); `$(VAR)` in the fields of kustomize's
varReference list is replaced by that field's final value, after names were fixed."""

from __future__ import annotations

import re
from typing import Any

from ._errors import KustomizeError
from ._fieldspecs import FieldSpec, find_fields
from ._resource import ResId, Resource, ResourceList

__all__ = ["VAR_REFERENCES", "merge_vars", "resolve_vars"]


def _workload(kind: str, pod: str) -> list[FieldSpec]:
    paths = [
        f"{pod}/containers/args",
        f"{pod}/containers/command",
        f"{pod}/containers/env/value",
        f"{pod}/containers/volumeMounts/mountPath",
        f"{pod}/initContainers/args",
        f"{pod}/initContainers/command",
        f"{pod}/initContainers/env/value",
        f"{pod}/initContainers/volumeMounts/mountPath",
    ]
    return [FieldSpec(path=path, kind=kind) for path in paths]


# kustomize's default varReference configuration (builtinpluginconsts/varreference.go), in
# its order.
VAR_REFERENCES: list[FieldSpec] = [
    *_workload("CronJob", "spec/jobTemplate/spec/template/spec"),
    FieldSpec("spec/jobTemplate/spec/template/volumes/nfs/server", "CronJob"),
    *_workload("DaemonSet", "spec/template/spec"),
    FieldSpec("spec/template/spec/volumes/nfs/server", "DaemonSet"),
    *_workload("Deployment", "spec/template/spec"),
    FieldSpec("spec/template/spec/volumes/nfs/server", "Deployment"),
    FieldSpec("spec/template/metadata/annotations", "Deployment"),
    FieldSpec("spec/rules/host", "Ingress"),
    FieldSpec("spec/tls/hosts", "Ingress"),
    FieldSpec("spec/tls/secretName", "Ingress"),
    *_workload("Job", "spec/template/spec"),
    FieldSpec("spec/template/spec/volumes/nfs/server", "Job"),
    *_workload("Pod", "spec"),
    FieldSpec("spec/volumes/nfs/server", "Pod"),
    *_workload("ReplicaSet", "spec/template/spec"),
    FieldSpec("spec/template/spec/volumes/nfs/server", "ReplicaSet"),
    FieldSpec("spec/ports/port", "Service"),
    FieldSpec("spec/ports/targetPort", "Service"),
    *_workload("StatefulSet", "spec/template/spec"),
    FieldSpec("spec/volumeClaimTemplates/spec/nfs/server", "StatefulSet"),
    FieldSpec("spec/nfs/server", "PersistentVolume"),
    FieldSpec("metadata/labels"),
    FieldSpec("metadata/annotations"),
]


def _target_id(var: dict[str, Any]) -> ResId:
    """The id a var's objref names (an apiVersion overrides group and version)."""
    ref = var.get("objref") or {}
    group, version = ref.get("group", ""), ref.get("version", "")
    api_version = ref.get("apiVersion", "")
    if api_version:
        parts = api_version.split("/")
        if len(parts) == 2:
            group, version = parts
        elif len(parts) == 1:
            version = parts[0]
    return ResId(group, version, ref.get("kind", ""), ref.get("name", ""), ref.get("namespace", ""))


def _describe(var: dict[str, Any], *, api_version_applied: bool = True) -> str:
    """Go's %v of a types.Var: `{NAME Kind.version.group {fieldPath}}` (kustomize fills the
    group and version from objref.apiVersion only once it has looked the var up)."""
    field_path = (var.get("fieldref") or {}).get("fieldPath", "")
    if api_version_applied:
        gvk = _target_id(var).gvk_string()
    else:
        ref = var.get("objref") or {}
        gvk = ResId(
            ref.get("group", ""), ref.get("version", ""), ref.get("kind", ""), ""
        ).gvk_string()
    return f"{{{var.get('name', '')} {gvk} {{{field_path}}}}}"


def merge_vars(
    resources: ResourceList, variables: list[dict[str, Any]], known: list[dict[str, Any]]
) -> None:
    """A kustomization's vars (kustomize's MergeVars): the object each one names (by any
    name it has had; in any namespace when the var gives none) is marked with it, and the
    var joins the build's vars (`known`)."""
    for var in variables:
        target = _target_id(var)
        exact = bool(target.namespace) or target.is_cluster_scoped()
        matched = [
            r
            for r in resources
            if any((rid.equals(target) if exact else rid.gvkn_equals(target)) for rid in r.ids())
        ]
        if len(matched) > 1:
            raise KustomizeError(
                f"found {len(matched)} resId matches for var {_describe(var)} "
                "(unable to disambiguate)"
            )
        if matched:
            matched[0].var_names.append(var.get("name", ""))
    for var in variables:
        if any(other.get("name") == var.get("name") for other in known):
            listed = " ".join(_describe(v, api_version_applied=False) for v in variables)
            raise KustomizeError(
                f"merging vars [{listed}]: var '{var.get('name', '')}' already encountered"
            )
        defaulted = dict(var)
        fieldref = dict(defaulted.get("fieldref") or {})
        if not fieldref.get("fieldPath"):
            fieldref["fieldPath"] = "metadata.name"
        defaulted["fieldref"] = fieldref
        known.append(defaulted)


def resolve_vars(
    resources: ResourceList,
    variables: list[dict[str, Any]],
    references: list[FieldSpec] | None = None,
) -> list[str]:
    """Replace `$(VAR)` in the varReference fields (default: kustomize's); returns
    kustomize's warning for vars never used."""
    values: dict[str, Any] = {}
    for var in sorted(variables, key=lambda v: str(v.get("name", ""))):
        name = var.get("name", "")
        holder = next((r for r in resources if name in r.var_names), None)
        if holder is None:
            raise KustomizeError(
                f"var '{_describe(var)}' cannot be mapped to a field in the set of known resources"
            )
        try:
            values[name] = _field_value(holder, var["fieldref"]["fieldPath"])
        except LookupError:
            raise KustomizeError(
                f"field specified in var '{_describe(var)}' not found in corresponding resource"
            ) from None
    if not values:
        return []
    counts: dict[str, int] = {}
    for resource in resources:
        for spec in VAR_REFERENCES if references is None else references:
            if spec.selects_object(resource.obj):
                for container, key in find_fields(resource.obj, spec):
                    _replace_in(container, key, values, counts)
    unused = [name for name in values if name not in counts]
    if unused:
        return [f"well-defined vars that were never replaced: {','.join(unused)}"]
    return []


_INDEX = re.compile(r"^(.*)\[(\d+)\]$")


def _split_path(path: str) -> list[str]:
    """kyaml's SmarterPathSplitter on `.` (brackets kept whole), then `ports[0]` → ports, 0."""
    parts: list[str] = []
    current = ""
    depth = 0
    for char in path:
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        if char == "." and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    fields: list[str] = []
    for part in parts:
        match = _INDEX.match(part)
        if match and part.endswith("]"):
            if match.group(1):
                fields.append(match.group(1))
            fields.append(match.group(2))
        else:
            fields.append(part)
    return fields


def _field_value(resource: Resource, path: str) -> Any:
    node: Any = resource.obj
    for part in _split_path(path):
        if isinstance(node, dict):
            if part not in node:
                raise LookupError(path)
            node = node[part]
        elif isinstance(node, list):
            if part.isdigit():
                index = int(part)
                if index >= len(node):
                    raise LookupError(path)
                node = node[index]
            elif part.startswith("[") and part.endswith("]") and "=" in part:
                key, _, wanted = part[1:-1].partition("=")
                node = next(
                    (i for i in node if isinstance(i, dict) and str(i.get(key)) == wanted), None
                )
                if node is None:
                    raise LookupError(path)
            else:
                raise LookupError(path)
        else:
            raise LookupError(path)
    if node is None:
        raise LookupError(path)
    return node


def _replace_in(container: Any, key: Any, values: dict[str, Any], counts: dict[str, int]) -> None:
    """refvar's Filter.set: a string field, every string value of a mapping, every item of a
    sequence (which must all be strings)."""
    node = container[key]
    if node is None:
        return
    if isinstance(node, str):
        container[key] = _expand(node, values, counts)
    elif isinstance(node, dict):
        for name, value in node.items():
            if isinstance(value, str):
                node[name] = _expand(value, values, counts)
    elif isinstance(node, list):
        for index, item in enumerate(node):
            if not isinstance(item, str):
                raise KustomizeError("invalid value type expect a string")
            node[index] = _expand(item, values, counts)


def _go_value(value: Any) -> str:
    """fmt's %v."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "inf" in text or "nan" in text:
            return text
        if value == int(value) and abs(value) < 1e21:
            digits = str(int(abs(value)))
            if len(digits) > 6:
                mantissa = digits.rstrip("0")
                sign = "-" if value < 0 else ""
                body = mantissa[0] + ("." + mantissa[1:] if len(mantissa) > 1 else "")
                return f"{sign}{body}e+{len(digits) - 1:02d}"
            return str(int(value))
        return text
    return str(value)


def _expand(text: str, values: dict[str, Any], counts: dict[str, int]) -> Any:
    """refvar's DoReplacements: `$(NAME)` replaced, `$$` an escaped `$`; a string that is
    exactly one reference takes the value with its type."""

    def mapped(name: str) -> Any:
        value = values.get(name, _UNKNOWN)
        if value is _UNKNOWN or not isinstance(value, str | int | float | bool):
            return f"$({name})"
        counts[name] = counts.get(name, 0) + 1
        return value

    out: list[str] = []
    checkpoint = 0
    cursor = 0
    while cursor < len(text):
        if text[cursor] == "$" and cursor + 1 < len(text):
            out.append(text[checkpoint:cursor])
            rest = text[cursor + 1 :]
            if rest[0] == "$":
                out.append("$")
                advance = 1
            elif rest[0] == "(":
                closer = rest.find(")", 1)
                if closer == -1:
                    out.append("$(")
                    advance = 1
                else:
                    name = rest[1:closer]
                    value = mapped(name)
                    if text == f"$({name})":
                        return value
                    out.append(_go_value(value))
                    advance = closer + 1
            else:
                out.append("$" + rest[0])
                advance = 1
            cursor += advance
            checkpoint = cursor + 1
        cursor += 1
    return "".join(out) + text[checkpoint:]


_UNKNOWN = object()

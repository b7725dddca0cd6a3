"""The patch fields of a kustomization: `patches`, `patchesStrategicMerge`, `patchesJson6902`.

Each follows its kustomize v5.5.0 transformer (PatchTransformer, PatchStrategicMergeTransformer,
PatchJson6902Transformer): every entry is read and parsed first, then the entries are applied in
order, and errors are worded as kustomize words them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from ._errors import KustomizeError
from ._jsonpatch import Operation, apply_json_patch, parse_json_patch, yaml_to_json
from ._loader import Loader
from ._namereference import name_prefixes, name_suffixes
from ._resource import ResId, Resource, ResourceList, resources_from_documents, scalar_text
from ._selectors import parse_label_selector
from ._strategic import strategic_merge
from ._yaml import parse_documents

# -- the three fields ---------------------------------------------------------------------------


def apply_patches(resources: ResourceList, entries: list[dict[str, Any]], loader: Loader) -> None:
    """`patches:` entries ({path | patch, target, options}), each a strategic merge patch (one
    or more documents) or a JSON 6902 patch, told apart as kustomize tells them apart."""
    configured = [_PatchEntry.configure(entry, loader) for entry in entries]
    for entry in configured:
        entry.apply(resources)


def apply_patches_strategic_merge(
    resources: ResourceList, entries: list[str], loader: Loader
) -> None:
    """`patchesStrategicMerge:` entries, each a file or (for legacy reasons) the patch itself;
    every patch goes to the object with its own id."""
    config = {"paths": list(entries)}
    patches: list[dict[str, Any]] = []
    for entry in entries:
        try:
            patches.extend(_smp_documents(str(entry)))
            continue
        except KustomizeError:
            pass
        try:
            patches.extend(_smp_documents(loader.read_text(str(entry)), str(entry)))
        except KustomizeError as exc:
            raise _config_error("PatchStrategicMergeTransformer", config, exc) from None
    if not patches:
        files = " ".join(str(e) for e in entries)
        raise _config_error(
            "PatchStrategicMergeTransformer",
            config,
            KustomizeError(f"patch appears to be empty; files=[{files}], Patch="),
        )
    for patch in patches:
        target = _get_by_id(resources, _patch_id(patch))
        _apply_strategic(resources, [target], patch, allow_name=False, allow_kind=False)


def apply_patches_json6902(
    resources: ResourceList, entries: list[dict[str, Any]], loader: Loader
) -> None:
    """`patchesJson6902:` entries ({target, path | patch}); the target needs a name."""
    configured: list[tuple[_Target, list[Operation]]] = []
    for entry in entries:
        fields = {
            "target": entry.get("target"),
            "path": entry.get("path"),
            "jsonOp": entry.get("patch"),
        }
        config = {k: v for k, v in fields.items() if v}
        try:
            configured.append(_configure_json6902(entry, loader))
        except KustomizeError as exc:
            raise _config_error("PatchJson6902Transformer", config, exc) from None
    for target, operations in configured:
        for resource in _select(resources, target):
            _apply_json(resource, operations, store_previous=False)


# -- patches: -----------------------------------------------------------------------------------


@dataclass
class _PatchEntry:
    """One `patches:` entry, read and told apart (kustomize's PatchTransformer.Config)."""

    label: str  # how kustomize names the patch in errors: [path: "..."] or [patch: "..."]
    target: _Target | None
    strategic: list[dict[str, Any]] | None  # None for a JSON patch
    operations: list[Operation]
    allow_name: bool
    allow_kind: bool

    @classmethod
    def configure(cls, entry: dict[str, Any], loader: Loader) -> _PatchEntry:
        config = {k: entry[k] for k in ("path", "patch", "target", "options") if entry.get(k)}
        try:
            return cls._configure(entry, _config_yaml(config), loader)
        except KustomizeError as exc:
            raise _config_error("PatchTransformer", config, exc) from None

    @classmethod
    def _configure(cls, entry: dict[str, Any], config_text: str, loader: Loader) -> _PatchEntry:
        path = str(entry.get("path") or "")
        text = str(entry.get("patch") or "").strip()
        config_text = config_text.rstrip("\n")
        if not text and not path:
            raise KustomizeError(f"must specify one of patch and path in\n{config_text}")
        if text and path:
            raise KustomizeError(f"patch and path can't be set at the same time\n{config_text}")
        label = f"[path: {_go_quote(path)}]" if path else f"[patch: {_go_quote(text)}]"
        if path:
            try:
                text = loader.read_text(path)
            except KustomizeError as exc:
                raise KustomizeError(
                    f"failed to get the patch file from path({path}): {exc}"
                ) from None
        strategic, strategic_error = _try(lambda: _smp_documents(text, path or "patch"))
        operations, json_error = _try(lambda: parse_json_patch(text))
        if strategic_error is None and json_error is None:
            raise KustomizeError(f"illegally qualifies as both an SM and JSON patch: {label}")
        if strategic_error is not None and json_error is not None:
            raise KustomizeError(f"unable to parse SM or JSON patch from {label}")
        options = entry.get("options") or {}
        return cls(
            label=label,
            target=_Target.parse(entry.get("target")),
            # A strategic merge patch without any document counts as an empty JSON patch.
            strategic=strategic or None,
            operations=operations or [],
            allow_name=bool(options.get("allowNameChange")),
            allow_kind=bool(options.get("allowKindChange")),
        )

    def apply(self, resources: ResourceList) -> None:
        if self.strategic is None:
            if self.target is None:
                raise KustomizeError(f"must specify a target for JSON patch {self.label}")
            for resource in _select(resources, self.target):
                _apply_json(resource, self.operations, store_previous=True)
            return
        for patch in self.strategic:
            if self.target is not None:
                targets = _select(resources, self.target)
                _apply_strategic(resources, targets, patch, self.allow_name, self.allow_kind)
                continue
            patch_id = _patch_id(patch)
            try:
                target = _get_by_id(resources, patch_id)
            except KustomizeError as exc:
                raise KustomizeError(
                    f'no resource matches strategic merge patch "{patch_id}": {exc}'
                ) from None
            _apply_strategic_by_id(resources, target, patch, self.allow_name, self.allow_kind)


def _configure_json6902(entry: dict[str, Any], loader: Loader) -> tuple[_Target, list[Operation]]:
    target = _Target.parse(entry.get("target"))
    if target is None:
        raise KustomizeError("target must be specified")
    if not target.name:
        raise KustomizeError("must specify the target name")
    path = str(entry.get("path") or "")
    text = str(entry.get("patch") or "")
    if not path and not text:
        raise KustomizeError("empty file path and empty jsonOp")
    if path:
        if text:
            raise KustomizeError("must specify a file path or jsonOp, not both")
        text = loader.read_text(path)
        if not text:
            raise KustomizeError(f"patch file '{path}' empty seems to be empty")
    if not text.startswith("["):
        text = yaml_to_json(text)
    try:
        operations = parse_json_patch(text)
    except KustomizeError as exc:
        raise KustomizeError(f"decoding {text}: {exc}") from None
    if not operations:
        raise KustomizeError(f"patch appears to be empty; file={path}, JsonOp={text}")
    return target, operations


# -- applying -----------------------------------------------------------------------------------


def _apply_strategic(
    resources: ResourceList,
    targets: list[Resource],
    patch: dict[str, Any],
    allow_name: bool,
    allow_kind: bool,
) -> None:
    """kustomize's ResMap.ApplySmPatch: patch each target with a copy of the patch, drop the
    deleted ones, and refuse two objects ending with one id."""
    # The copy gets its labels and annotations through kyaml's SetLabels/SetAnnotations: values
    # become strings (`null` the string "null") and an empty or null map disappears.
    patch = dict(patch)
    metadata = patch.get("metadata")
    if isinstance(metadata, dict):
        metadata = dict(metadata)
        for field in ("labels", "annotations"):
            _set_string_map(metadata, field, _string_values(metadata.get(field)))
        patch["metadata"] = metadata
    chosen = {id(r) for r in targets}
    kept: list[Resource] = []
    for resource in resources:
        if id(resource) in chosen:
            # The copy takes the target's apiVersion; its kind stays (for allowKindChange).
            copy = {**patch, "apiVersion": resource.obj.get("apiVersion")}
            if not _apply_strategic_one(resource, copy, allow_name, allow_kind):
                continue
        kept.append(resource)
    seen: set[tuple[str, ...]] = set()
    for resource in kept:
        rid = resource.id()
        if rid.key() in seen:
            raise KustomizeError(f"may not add resource with an already registered id: {rid}")
        seen.add(rid.key())
    resources.replace_all(kept)


def _apply_strategic_by_id(
    resources: ResourceList,
    target: Resource,
    patch: dict[str, Any],
    allow_name: bool,
    allow_kind: bool,
) -> None:
    """A `patches:` strategic merge patch without a target, applied as is to its object."""
    if not _apply_strategic_one(target, patch, allow_name, allow_kind):
        resources.remove(target)


def _apply_strategic_one(
    resource: Resource, patch: dict[str, Any], allow_name: bool, allow_kind: bool
) -> bool:
    """Patch one object (kustomize's Resource.ApplySmPatch); False when the patch deleted it."""
    before = resource.id()
    merged = strategic_merge(resource.obj, patch)
    if not merged:
        return False
    # Name and kind change only where the options allow it; the namespace never does.
    if not allow_kind:
        merged["kind"] = resource.obj.get("kind")
    metadata = merged.get("metadata")
    if not isinstance(metadata, dict):
        metadata = merged["metadata"] = {}
    if not allow_name:
        metadata["name"] = before.name
    if before.namespace:
        metadata["namespace"] = before.namespace
    else:
        metadata.pop("namespace", None)
    if allow_name or allow_kind:
        # kustomize remembers the id whether or not it changes (StorePreviousId), so that
        # references to the old name follow.
        resource.previous.append(before)
    resource.obj = merged
    return True


def _apply_json(resource: Resource, operations: list[Operation], *, store_previous: bool) -> None:
    """Apply a JSON patch to one object. `patches:` remembers the object's id first
    (StorePreviousId), `patchesJson6902:` does not, so only the former's renames are followed
    by references."""
    before = resource.id()
    if store_previous:
        resource.previous.append(before)
    # kustomize keeps what it remembers in annotations of the object (previousNames...), and the
    # patch sees them: `add /metadata/annotations/x` works on an object without annotations.
    hidden = _build_annotations(resource)
    obj = resource.obj
    metadata = obj.get("metadata")
    if hidden and isinstance(metadata, dict):
        annotations = {**_string_values(metadata.get("annotations")), **hidden}
        obj = {**obj, "metadata": {**metadata, "annotations": annotations}}
    patched = apply_json_patch(obj, operations)
    # kustomize puts the annotations back through SetAnnotations (see _set_string_map), which
    # also creates metadata when the patch removed it; the build annotations go.
    metadata = patched.get("metadata")
    if not isinstance(metadata, dict):
        metadata = patched["metadata"] = {}
    annotations = _string_values(metadata.get("annotations"))
    for key in hidden:
        annotations.pop(key, None)
    _set_string_map(metadata, "annotations", annotations)
    if not scalar_text(metadata.get("name")):
        raise KustomizeError(f"missing metadata.name in object {before.gvk_string()}")
    resource.obj = patched


_BUILD = "internal.config.kubernetes.io/"


def _build_annotations(resource: Resource) -> dict[str, str]:
    """The build annotations kustomize would have on the object during a JSON patch: the ids
    it had, the name prefixes and suffixes it got, how it was generated."""
    found: dict[str, str] = {}
    if resource.previous:
        found[_BUILD + "previousKinds"] = ",".join(r.kind for r in resource.previous)
        found[_BUILD + "previousNames"] = ",".join(r.name for r in resource.previous)
        found[_BUILD + "previousNamespaces"] = ",".join(
            _effective_namespace(r) for r in resource.previous
        )
    if prefixes := name_prefixes(resource):
        found[_BUILD + "prefixes"] = ",".join(prefixes)
    if suffixes := name_suffixes(resource):
        found[_BUILD + "suffixes"] = ",".join(suffixes)
    if resource.behavior or resource.needs_hash:
        found[_BUILD + "generatorBehavior"] = resource.behavior or "unspecified"
    if resource.needs_hash:
        found[_BUILD + "needsHashSuffix"] = "enabled"
    return found


def _string_values(value: Any) -> dict[str, str]:
    """Labels or annotations as kyaml reads them (GetLabels): each value's text, `null` as
    "null"; nothing when the field is not a map."""
    if not isinstance(value, dict):
        return {}
    return {_text(k): _text(v) for k, v in value.items()}


def _set_string_map(metadata: dict[str, Any], field: str, values: dict[str, str]) -> None:
    """kyaml's SetLabels/SetAnnotations: the field rewritten with string values in key order,
    removed when empty."""
    metadata.pop(field, None)
    if values:
        metadata[field] = dict(sorted(values.items()))


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return ""
    return str(value)


# -- finding targets ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Target:
    """A patch `target:` (kustomize's types.Selector): group, version, kind, name and namespace
    are regular expressions matched whole; label and annotation selectors use Kubernetes
    selector syntax."""

    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    @classmethod
    def parse(cls, raw: Any) -> _Target | None:
        if raw is None:
            return None
        if not isinstance(raw, dict):
            raise KustomizeError(f"invalid patch target: {raw!r}")

        def text(key: str) -> str:
            value = raw.get(key)
            return "" if value is None else str(value)

        return cls(
            group=text("group"),
            version=text("version"),
            kind=text("kind"),
            name=text("name"),
            namespace=text("namespace"),
            label_selector=text("labelSelector"),
            annotation_selector=text("annotationSelector"),
        )


def _select(resources: ResourceList, target: _Target) -> list[Resource]:
    """kustomize's ResMap.Select: name and namespace match the original or the current id."""
    group, version, kind, name, namespace = (
        _pattern(target.group),
        _pattern(target.version),
        _pattern(target.kind),
        _pattern(target.name),
        _pattern(target.namespace),
    )
    labels = parse_label_selector(target.label_selector)
    annotations = parse_label_selector(target.annotation_selector)
    selected: list[Resource] = []
    for resource in resources:
        original, current = resource.original_id(), resource.id()
        if not (
            namespace(_effective_namespace(original)) or namespace(_effective_namespace(current))
        ):
            continue
        if not (name(original.name) or name(current.name)):
            continue
        if not (group(current.group) and version(current.version) and kind(current.kind)):
            continue
        metadata = resource.obj.get("metadata")
        metadata = metadata if isinstance(metadata, dict) else {}
        if not labels.matches(_string_values(metadata.get("labels"))):
            continue
        if not annotations.matches(_string_values(metadata.get("annotations"))):
            continue
        selected.append(resource)
    return selected


def _pattern(pattern: str) -> Callable[[str], bool]:
    if not pattern:
        return lambda _value: True
    anchored = f"^(?:{pattern})$"
    try:
        compiled = re.compile(f"(?:{pattern})")
    except re.error as exc:
        raise KustomizeError(f"error parsing regexp: {exc}: `{anchored}`") from None
    return lambda value: compiled.fullmatch(value) is not None


def _effective_namespace(rid: ResId) -> str:
    """The namespace a target's regex sees (kustomize's EffectiveNamespace)."""
    if rid.is_cluster_scoped():
        return "_non_namespaceable_"
    return rid.namespace or "default"


def _get_by_id(resources: ResourceList, wanted: ResId) -> Resource:
    """The one object that has or had the id (kustomize's ResMap.GetById)."""
    found = resources.get_by_any_id(wanted)
    if len(found) == 1:
        return found[0]
    what = "multiple matches" if found else "no matches"
    raise KustomizeError(f"{what} for Id {wanted}; failed to find unique target for patch {wanted}")


def _patch_id(patch: dict[str, Any]) -> ResId:
    return Resource(obj=patch).id()


def _smp_documents(text: str, source: str = "patch") -> list[dict[str, Any]]:
    """The objects of a strategic merge patch as kustomize's resource factory reads them (empty
    documents skipped, a kind and a name required, `*List` items expanded)."""
    return [r.obj for r in resources_from_documents(parse_documents(text, source), source)]


def _try(read: Callable[[], Any]) -> tuple[Any, KustomizeError | None]:
    try:
        return read(), None
    except KustomizeError as exc:
        return None, exc


# -- error messages -----------------------------------------------------------------------------


def _config_error(plugin: str, config: dict[str, Any], cause: Exception) -> KustomizeError:
    return KustomizeError(
        f"trouble configuring builtin {plugin} with config: `\n{_config_yaml(config)}`: {cause}"
    )


class _ConfigDumper(yaml.SafeDumper):
    pass


def _str_representer(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ConfigDumper.add_representer(str, _str_representer)


def _config_yaml(config: dict[str, Any]) -> str:
    """A transformer's configuration as kustomize prints it in errors (sigs.k8s.io/yaml)."""
    return yaml.dump(config, Dumper=_ConfigDumper, sort_keys=True, default_flow_style=False)


def _go_quote(text: str) -> str:
    """Go's %q of a string."""
    out = ['"']
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)

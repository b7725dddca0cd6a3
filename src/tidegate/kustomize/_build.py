"""A build, step by step as kustomize v5 runs it (api/internal/target/kusttarget.go and
api/krusty/kustomizer.go).

For each kustomization, from the innermost base out: its `resources` (files and nested
kustomizations), its transformer configuration (kustomize's defaults, `configurations`,
`crds`), its generators, its `components` (which act on the same objects), then its
transformers in kustomize's fixed order. At the top only: content hashes on generated names,
name references fixed, vars resolved, local-config objects dropped, the sort, and the build
metadata label and annotations.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ._errors import KustomizeError
from ._fieldspecs import TransformerConfig, merge_field_specs
from ._generators import generate, merge_generated
from ._hash import apply_hash_suffixes
from ._kustomization import COMPONENT_KIND, Kustomization, decode_kustomization, load_kustomization
from ._loader import DEFAULT_MAX_FILE_SIZE, FileLoader, LoadRestrictor, is_remote
from ._namereference import fix_name_references
from ._order import sort_resources
from ._patches import apply_patches, apply_patches_json6902, apply_patches_strategic_merge
from ._replacements import apply_replacements
from ._resource import Resource, ResourceList, resources_from_documents, scalar_text
from ._transformers import (
    apply_annotations,
    apply_images,
    apply_labels,
    apply_name_prefix_suffix,
    apply_namespace,
    apply_replicas,
)
from ._vars import VAR_REFERENCES, merge_vars, resolve_vars
from ._yaml import ScalarTexts, dump, parse_documents, parse_yaml

__all__ = ["MANAGED_BY_VALUE", "Build", "build_resources"]

_ORIGIN_ANNOTATION = "config.kubernetes.io/origin"
_TRANSFORMATIONS_ANNOTATION = "alpha.config.kubernetes.io/transformations"
_LOCAL_CONFIG_ANNOTATION = "config.kubernetes.io/local-config"
_MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
# What kustomize as a library (kubectl's, Flux's) writes: its provenance has no version.
MANAGED_BY_VALUE = "kustomize-(devel)"


@dataclass
class Build:
    """The outcome of a build: the objects in output order and kustomize's warnings (which
    `kustomize build` prints on stderr)."""

    resources: ResourceList
    warnings: list[str] = field(default_factory=list)


@dataclass
class _Context:
    """What the kustomizations of one build share."""

    build_metadata: list[str]  # the top kustomization's, for every level
    warnings: list[str] = field(default_factory=list)
    variables: list[dict[str, Any]] = field(default_factory=list)  # vars of every level


@dataclass
class _Accumulator:
    """kustomize's ResAccumulator: the objects so far and the transformer configuration
    merged from every kustomization they came through."""

    resources: ResourceList = field(default_factory=ResourceList)
    config: TransformerConfig = field(default_factory=TransformerConfig)

    def merge(self, other: _Accumulator) -> None:
        self.resources.extend(other.resources)
        self.config = self.config.merge(other.config)


@dataclass
class _Target:
    """One kustomization being built (kustomize's KustTarget)."""

    loader: FileLoader
    kustomization: Kustomization
    context: _Context
    origin: str | None  # path from the top kustomization's directory; None: not tracked

    @property
    def fields(self) -> dict[str, Any]:
        return self.kustomization.fields

    def configured_in(self) -> str:
        return os.path.normpath(os.path.join(self.origin or "", self.kustomization.file_name))


def build_resources(
    path: Path | str,
    *,
    root: Path | str | None = None,
    load_restrictor: LoadRestrictor = "LoadRestrictionsRootOnly",
    max_file_size: int = DEFAULT_MAX_FILE_SIZE,
    kustomization: dict[str, Any] | None = None,
) -> Build:
    """Build the kustomization in `path`, reading nothing outside `root` (default: `path`).

    `kustomization` replaces the directory's kustomization file (Flux generates one for
    directories without). Raises `KustomizeError` with kustomize's wording.
    """
    loader = FileLoader(
        root if root is not None else path,
        directory=path,
        load_restrictor=load_restrictor,
        max_file_size=max_file_size,
    )
    if kustomization is None:
        top = load_kustomization(loader)
    else:
        top = Kustomization.from_fields(
            decode_kustomization(kustomization), directory=loader.directory
        )
    build_metadata = top.list("buildMetadata")
    context = _Context(build_metadata=build_metadata, warnings=list(top.warnings))
    target = _Target(loader, top, context, origin="" if build_metadata else None)
    accumulator = _accumulate_target(target, _Accumulator())
    _finish(target, accumulator)
    return Build(resources=accumulator.resources, warnings=context.warnings)


# ---------------------------------------------------------------------------------------------
# Accumulation


def _accumulate_target(target: _Target, accumulator: _Accumulator) -> _Accumulator:
    """kustomize's accumulateTarget."""
    try:
        _accumulate_resources(target, accumulator, target.kustomization.list("resources"))
    except KustomizeError as exc:
        raise KustomizeError(f"accumulating resources: {exc}") from None
    _refuse_unsupported(target)
    accumulator.config = accumulator.config.merge(_configurations(target))
    _merge_crds(target, accumulator)
    _run_generators(target, accumulator.resources)
    try:
        _accumulate_components(target, accumulator, target.kustomization.list("components"))
    except KustomizeError as exc:
        raise KustomizeError(f"accumulating components: {exc}") from None
    _run_transformers(target, accumulator)
    variables = target.kustomization.list("vars")
    if variables:
        merge_vars(accumulator.resources, variables, target.context.variables)
    return accumulator


def _accumulate_resources(target: _Target, accumulator: _Accumulator, paths: list[str]) -> None:
    """Each path as a file of objects, else as a kustomization directory; both errors are
    reported when neither works (kustomize's `accumulation err='…': …`)."""
    for path in paths:
        if is_remote(path):
            raise KustomizeError(
                f"accumulating resources from '{path}': remote resources are not allowed: "
                f"only files below '{target.loader.root}' are read"
            )
        try:
            _accumulate_file(target, accumulator.resources, path)
            continue
        except KustomizeError as exc:
            file_error = str(exc)
        try:
            loader = target.loader.new(path)
        except KustomizeError as exc:
            if "MalformedYAMLError" in file_error:
                raise KustomizeError(file_error) from None
            raise KustomizeError(f"accumulation err='{file_error}': {exc}") from None
        try:
            _accumulate_directory(target, accumulator, loader, path, component=False)
        except KustomizeError as exc:
            raise KustomizeError(f"accumulation err='{file_error}': {exc}") from None


def _accumulate_file(target: _Target, resources: ResourceList, path: str) -> None:
    try:
        text = target.loader.read_text(path)
        origin = os.path.relpath(
            os.path.normpath(os.path.join(target.loader.directory, path)), target.loader.root
        )
        found = resources_from_documents(parse_documents(text, path), origin)
    except KustomizeError as exc:
        raise KustomizeError(f"accumulating resources from '{path}': {exc}") from None
    if target.origin is not None:
        for resource in found:
            resource.origin_info = {"path": _join(target.origin, path)}
    try:
        resources.extend(found)
    except KustomizeError as exc:
        raise KustomizeError(f"merging resources from '{path}': {exc}") from None


def _accumulate_components(target: _Target, accumulator: _Accumulator, paths: list[str]) -> None:
    for path in paths:
        try:
            loader = target.loader.new(path)
        except KustomizeError as exc:
            raise KustomizeError(f'loader.New "{exc}"') from None
        try:
            _accumulate_directory(target, accumulator, loader, path, component=True)
        except KustomizeError as exc:
            raise KustomizeError(f'accumulateDirectory: "{exc}"') from None


def _accumulate_directory(
    target: _Target, accumulator: _Accumulator, loader: FileLoader, path: str, *, component: bool
) -> None:
    """A nested kustomization: built in an accumulator of its own, then merged into ours; a
    component works on ours directly."""
    try:
        kustomization = load_kustomization(loader)
    except KustomizeError as exc:
        raise KustomizeError(f"couldn't make target for path '{loader.directory}': {exc}") from None
    if component and kustomization.kind != COMPONENT_KIND:
        raise KustomizeError(
            f"expected kind '{COMPONENT_KIND}' for path '{loader.directory}' but got "
            f"'{kustomization.kind}'"
        )
    if not component and kustomization.kind == COMPONENT_KIND:
        raise KustomizeError(f"expected kind != '{COMPONENT_KIND}' for path '{loader.directory}'")
    target.context.warnings.extend(kustomization.warnings)
    child = _Target(loader, kustomization, target.context, _join(target.origin, path))
    try:
        if component:
            _accumulate_target(child, accumulator)
            return
        accumulated = _accumulate_target(child, _Accumulator())
    except KustomizeError as exc:
        raise KustomizeError(f"recursed accumulation of path '{loader.directory}': {exc}") from None
    try:
        accumulator.merge(accumulated)
    except KustomizeError as exc:
        raise KustomizeError(f"recursed merging from path '{loader.directory}': {exc}") from None


def _join(origin: str | None, path: str) -> str | None:
    if origin is None:
        return None
    return os.path.normpath(os.path.join(origin, path))


def _refuse_unsupported(target: _Target) -> None:
    """Fields that would run plugins or Helm, or change the schema: refused, not ignored."""
    for name, what in (
        ("openapi", "custom OpenAPI schemas"),
        ("generators", "generator plugins"),
        ("transformers", "transformer plugins"),
        ("validators", "validator plugins"),
        ("helmCharts", "Helm charts"),
        ("helmChartInflationGenerator", "Helm charts"),
    ):
        if target.fields.get(name):
            where = os.path.join(target.loader.directory, target.kustomization.file_name)
            raise KustomizeError(f"'{where}': {name}: {what} are not supported")


def _configurations(target: _Target) -> TransformerConfig:
    """kustomize's defaults merged with the kustomization's `configurations` files."""
    config = TransformerConfig.default()
    for path in target.kustomization.list("configurations"):
        document = parse_yaml(target.loader.read_text(path), path)
        config = config.merge(TransformerConfig.from_configuration(document, path))
    return config


def _merge_crds(target: _Target, accumulator: _Accumulator) -> None:
    """`crds`: OpenAPI definitions of custom kinds, whose x-kubernetes-* markers add field
    specs (name references, labels, annotations, prefixes) to the configuration."""
    paths = target.kustomization.list("crds")
    config = TransformerConfig()
    for path in paths:
        try:
            text = target.loader.read_text(path)
            try:
                definitions = parse_yaml(text, path)
            except KustomizeError as exc:
                raise KustomizeError(
                    f"unable to parse open API definition from '{path}': {exc}"
                ) from None
            config = config.merge(TransformerConfig.from_crd_definitions(definitions, path))
        except KustomizeError as exc:
            raise KustomizeError(f"loading CRDs [{' '.join(paths)}]: {exc}") from None
    if paths:
        accumulator.config = accumulator.config.merge(config)


# ---------------------------------------------------------------------------------------------
# Generators and transformers (each in its own module), in kustomize's order


def _run_generators(target: _Target, resources: ResourceList) -> None:
    if not target.fields.get("configMapGenerator") and not target.fields.get("secretGenerator"):
        return
    generated = generate(target.fields, target.loader)
    if target.origin is not None:
        for resource in generated:
            if resource.origin_info is None:
                kind = "SecretGenerator" if resource.kind == "Secret" else "ConfigMapGenerator"
                resource.origin_info = _configured(target, kind)
    # A generated object taking the place of an older one keeps the older one's transformer
    # history, and with `behavior: merge` its origin too.
    kept: dict[int, tuple[dict[str, Any] | None, list[dict[str, Any]]]] = {}
    for resource in generated:
        for old in resources.get_by_any_id(resource.id())[:1]:
            origin = old.origin_info if resource.behavior == "merge" else resource.origin_info
            kept[id(resource)] = (origin, list(old.transformations))
    merge_generated(resources, generated)
    for resource in generated:
        if id(resource) in kept:
            resource.origin_info, resource.transformations = kept[id(resource)]


def _configured(target: _Target, kind: str) -> dict[str, Any]:
    return {
        "configuredIn": target.configured_in(),
        "configuredBy": {"apiVersion": "builtin", "kind": kind},
    }


_Step = tuple[str, int, Callable[[ResourceList], None]]


def _transformers(target: _Target, config: TransformerConfig) -> list[_Step]:
    """(kustomize plugin kind, instances, run) for each builtin transformer the kustomization
    configures, in kustomize's order. kustomize makes one plugin instance per patch, image,
    replica or label entry; each is recorded in the transformations annotation."""
    fields, loader = target.fields, target.loader
    steps: list[_Step] = []
    smp = fields.get("patchesStrategicMerge") or []
    if smp:
        steps.append(
            (
                "PatchStrategicMergeTransformer",
                1,
                lambda r: apply_patches_strategic_merge(r, smp, loader),
            )
        )
    patches = fields.get("patches") or []
    if patches:
        steps.append(
            ("PatchTransformer", len(patches), lambda r: apply_patches(r, patches, loader))
        )
    namespace = fields.get("namespace") or ""
    if namespace:
        steps.append(("NamespaceTransformer", 1, lambda r: apply_namespace(r, namespace, config)))
    prefix, suffix = fields.get("namePrefix") or "", fields.get("nameSuffix") or ""
    if prefix or suffix:
        # One call renames with both; kustomize runs a prefix then a suffix transformer.
        rename = lambda r: apply_name_prefix_suffix(r, prefix, suffix, config)  # noqa: E731
        steps.append(("PrefixTransformer", 1 if prefix else 0, rename))
        if suffix:
            steps.append(("SuffixTransformer", 1, lambda r: None))
    labels = fields.get("labels") or []
    common_labels = fields.get("commonLabels")
    if labels or common_labels:
        steps.append(
            (
                "LabelTransformer",
                len(labels) + 1,
                lambda r: apply_labels(r, labels, common_labels or {}, config),
            )
        )
    annotations = fields.get("commonAnnotations") or {}
    if annotations:
        steps.append(
            ("AnnotationsTransformer", 1, lambda r: apply_annotations(r, annotations, config))
        )
    json_patches = fields.get("patchesJson6902") or []
    if json_patches:
        steps.append(
            (
                "PatchJson6902Transformer",
                len(json_patches),
                lambda r: apply_patches_json6902(r, json_patches, loader),
            )
        )
    replicas = fields.get("replicas") or []
    if replicas:
        steps.append(
            (
                "ReplicaCountTransformer",
                len(replicas),
                lambda r: apply_replicas(r, replicas, config),
            )
        )
    images = fields.get("images") or []
    if images:
        steps.append(
            ("ImageTagTransformer", len(images), lambda r: apply_images(r, images, config))
        )
    replacements = fields.get("replacements") or []
    if replacements:
        steps.append(
            ("ReplacementTransformer", 1, lambda r: apply_replacements(r, replacements, loader))
        )
    return steps


def _run_transformers(target: _Target, accumulator: _Accumulator) -> None:
    resources = accumulator.resources
    for kind, instances, run in _transformers(target, accumulator.config):
        run(resources)
        if target.origin is not None:
            entry = _configured(target, kind)
            for resource in resources:
                for _ in range(instances):
                    if resource.origin_info is None:
                        resource.origin_info = entry
                    else:
                        resource.transformations.append(entry)
        # kustomize drops objects a transformer emptied (DropEmpties).
        if any(not resource.obj for resource in resources):
            resources.replace_all(r for r in resources if r.obj)


# ---------------------------------------------------------------------------------------------
# The top level


def _finish(target: _Target, accumulator: _Accumulator) -> None:
    resources, config = accumulator.resources, accumulator.config
    apply_hash_suffixes(resources)
    fix_name_references(resources, config)
    if target.context.variables:
        references = merge_field_specs(VAR_REFERENCES, config.var_reference)
        target.context.warnings.extend(
            resolve_vars(resources, target.context.variables, references)
        )
    resources.replace_all(r for r in resources if not _is_local_config(r))
    resources.replace_all(sort_resources(list(resources), target.fields.get("sortOptions")))
    build_metadata = target.context.build_metadata
    if "managedByLabel" in build_metadata:
        for resource in resources:
            labels = resource.metadata.get("labels")
            if not isinstance(labels, dict):
                labels = resource.metadata["labels"] = {}
            labels[_MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    for resource in resources:
        _clean_annotations(resource)
    if "originAnnotations" in build_metadata:
        for resource in resources:
            if resource.origin_info:
                _annotate(resource, _ORIGIN_ANNOTATION, _origin_yaml(resource.origin_info))
    if "transformerAnnotations" in build_metadata:
        for resource in resources:
            if resource.transformations:
                text = "".join(
                    "- " + _origin_yaml(t).replace("\n", "\n  ").rstrip(" ")
                    for t in resource.transformations
                )
                _annotate(resource, _TRANSFORMATIONS_ANNOTATION, text)


def _is_local_config(resource: Resource) -> bool:
    """kustomize drops objects annotated config.kubernetes.io/local-config (unless "false")."""
    annotations = resource.obj.get("metadata", {}).get("annotations")
    return (
        isinstance(annotations, dict)
        and annotations.get(_LOCAL_CONFIG_ANNOTATION, "false") != "false"
    )


# Annotations kustomize uses inside a build (its own and kyaml's reader annotations) and
# removes from the output, whoever wrote them.
_BUILD_ANNOTATIONS = frozenset(
    [
        *(
            f"internal.config.kubernetes.io/{name}"
            for name in (
                "previousKinds",
                "previousNames",
                "prefixes",
                "suffixes",
                "previousNamespaces",
                "allowNameChange",
                "allowKindChange",
                "refBy",
                "generatorBehavior",
                "needsHashSuffix",
                "path",
                "index",
                "seqindent",
                "id",
                "annotations-migration-resource-id",
                "helm-generated",
            )
        ),
        "config.kubernetes.io/path",
        "config.kubernetes.io/index",
        "config.k8s.io/id",
        _ORIGIN_ANNOTATION,
        _TRANSFORMATIONS_ANNOTATION,
    ]
)


def _clean_annotations(resource: Resource) -> None:
    """Build annotations removed. kustomize then sets the annotations of every object again,
    from their text: values become strings (`1` is "1"), and an empty map goes away."""
    meta = resource.obj.get("metadata")
    if not isinstance(meta, dict) or "annotations" not in meta:
        return
    annotations = meta["annotations"]
    if isinstance(annotations, dict):
        for key in _BUILD_ANNOTATIONS.intersection(annotations):
            del annotations[key]
        if not annotations:
            del meta["annotations"]
            return
        texts = annotations.texts if isinstance(annotations, ScalarTexts) else {}
        for key, value in annotations.items():
            if isinstance(value, dict | list):
                annotations[key] = ""
            elif not isinstance(value, str):
                annotations[key] = texts.get(key, scalar_text(value))
    elif annotations is None:
        del meta["annotations"]


def _annotate(resource: Resource, key: str, value: str) -> None:
    annotations = resource.metadata.get("annotations")
    if not isinstance(annotations, dict):
        annotations = resource.metadata["annotations"] = {}
    annotations[key] = value


def _origin_yaml(origin: dict[str, Any]) -> str:
    """kustomize's Origin as kyaml marshals it (path, repo, ref, configuredIn, configuredBy)."""
    lines = []
    for key in ("path", "repo", "ref", "configuredIn"):
        if origin.get(key):
            lines.append(f"{key}: {_scalar(origin[key])}\n")
    by = origin.get("configuredBy")
    if by:
        lines.append("configuredBy:\n")
        for key in ("apiVersion", "kind", "name", "namespace"):
            if by.get(key):
                lines.append(f"  {key}: {_scalar(by[key])}\n")
    return "".join(lines)


def _scalar(text: str) -> str:
    """A string as the YAML printer writes it in a mapping."""
    return dump({"v": text})[3:-1]

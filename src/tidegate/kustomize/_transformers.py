"""The builtin transformers a kustomization configures: namespace, name prefix and suffix,
labels, annotations, images and replicas, with kustomize v5.5.0's default field specs.

kustomize runs a kustomization's transformers in this order (`configureBuiltinTransformers`):
patchesStrategicMerge, patches, namespace, namePrefix, nameSuffix, labels (each `labels`
entry, then `commonLabels`), commonAnnotations, patchesJson6902, replicas, images,
replacements.
"""

from __future__ import annotations

import re
from typing import Any

from ._errors import KustomizeError
from ._fieldspecs import (
    CREATE_MAP,
    CREATE_SCALAR,
    METADATA_LABELS,
    FieldSpec,
    TransformerConfig,
    apply_field_specs,
    bool_value,
    gvk_selected,
    int_value,
    merge_field_specs,
    parse_field_specs,
    string_map,
    string_value,
)
from ._hash import go_json
from ._namereference import record_name_prefix, record_name_suffix
from ._resource import Resource, ResourceList, is_cluster_scoped, scalar_text

_DEFAULT = TransformerConfig.default()
_BINDINGS = ("RoleBinding", "ClusterRoleBinding")

# --- namespace -------------------------------------------------------------------------------


def apply_namespace(
    resources: ResourceList, namespace: str, config: TransformerConfig | None = None
) -> None:
    """kustomize's `namespace:`: set `metadata.namespace` of every namespaced object (kinds
    unknown to kustomize count as namespaced), rename a `v1` Namespace to it, set the
    namespace of RoleBinding and ClusterRoleBinding subjects named `default`, of an
    APIService's service and of a CRD's conversion webhook service.

    Every object's id is remembered (as kustomize does, even when nothing changes), so that
    name references can find objects by the namespace they were moved to.
    """
    if not namespace:
        return

    namespace_specs = (config or _DEFAULT).namespace

    def set_namespace(container: Any, key: Any) -> None:
        _require_scalar(container[key], "namespace field specs must target scalar nodes")
        container[key] = namespace

    for resource in resources:
        if not resource.obj:
            continue
        resource.previous.append(resource.id())
        obj = resource.obj
        if not is_cluster_scoped(resource.api_version, resource.kind):
            resource.metadata["namespace"] = namespace
        if resource.kind in _BINDINGS:
            subjects = obj.get("subjects")
            if isinstance(subjects, list):
                for subject in subjects:
                    if isinstance(subject, dict) and subject.get("name") == "default":
                        subject["namespace"] = namespace
        # metadata.namespace and binding subjects are done above, whatever the configuration
        # says; only a v1 Namespace is renamed to the namespace.
        specs = [
            s
            for s in namespace_specs
            if s.path != "metadata/namespace"
            and (s.path != "metadata/name" or resource.api_version == "v1")
            and not (s.kind in _BINDINGS and s.path == "subjects/namespace")
        ]
        apply_field_specs(obj, specs, set_namespace, CREATE_SCALAR)
    _fail_on_id_conflict(resources, "namespace transformation produces ID conflict")


def _require_scalar(value: object, message: str) -> None:
    if isinstance(value, dict | list):
        raise KustomizeError(message)


def _fail_on_id_conflict(resources: ResourceList, message: str) -> None:
    seen: dict[tuple[str, str, str, str, str], Resource] = {}
    for resource in resources:
        key = resource.id().key()
        if key in seen:
            both = " ".join(go_json(r.obj) for r in (seen[key], resource))
            raise KustomizeError(f"{message}: [{both}]")
        seen[key] = resource


# --- name prefix and suffix ------------------------------------------------------------------

# kustomize never renames these kinds (of any group, for Namespace and CRDs).
_NOT_RENAMED = (
    ("", "CustomResourceDefinition"),
    ("apiregistration.k8s.io", "APIService"),
    ("", "Namespace"),
)


def apply_name_prefix_suffix(
    resources: ResourceList, prefix: str, suffix: str, config: TransformerConfig | None = None
) -> None:
    """kustomize's `namePrefix` and `nameSuffix`: prepend and append to `metadata.name` (and
    the other fields the configuration names) of every object but CustomResourceDefinitions,
    APIServices and Namespaces, judged by the kind they were first read as.

    The prefix and the suffix are two renames (as in kustomize's two transformers), each
    recorded with `Resource.set_name`, and remembered for name references."""
    config = config or _DEFAULT
    if prefix:
        _add_affix(resources, config.name_prefix, prefix, is_prefix=True)
    if suffix:
        _add_affix(resources, config.name_suffix, suffix, is_prefix=False)


def _add_affix(
    resources: ResourceList, specs: list[FieldSpec], affix: str, is_prefix: bool
) -> None:
    def add(container: Any, key: Any) -> None:
        value = container[key]
        _require_scalar(
            value, f"expected a scalar at a name {'prefix' if is_prefix else 'suffix'} field"
        )
        text = scalar_text(value)
        container[key] = affix + text if is_prefix else text + affix

    for resource in resources:
        original = resource.original_id()
        if any(
            gvk_selected(original.group, original.version, original.kind, group, "", kind)
            for group, kind in _NOT_RENAMED
        ):
            continue
        for spec in specs:
            if not gvk_selected(
                original.group, original.version, original.kind, spec.group, spec.version, spec.kind
            ):
                continue
            if spec.path == "metadata/name":
                if is_prefix:
                    record_name_prefix(resource, affix)
                else:
                    record_name_suffix(resource, affix)
                name = resource.name
                resource.set_name(affix + name if is_prefix else name + affix)
            else:
                apply_field_specs(resource.obj, [spec], add)


# --- labels and annotations ------------------------------------------------------------------


def apply_labels(
    resources: ResourceList,
    labels: list[dict[str, Any]],
    common_labels: dict[str, Any],
    config: TransformerConfig | None = None,
) -> None:
    """kustomize's `labels` entries, in order, then `commonLabels`.

    A `labels` entry adds its `pairs` to `metadata.labels`, with `includeTemplates` also to
    pod and claim templates, with `includeSelectors` also to selectors (like `commonLabels`),
    and to the field specs given in `fields`. Selectors and templates are created where
    kustomize creates them (a Service's `spec.selector`, a Deployment's
    `spec.selector.matchLabels`); optional selectors (affinity, Jobs, PodDisruptionBudgets,
    NetworkPolicies) only get labels if they exist.
    """
    config = config or _DEFAULT
    for index, entry in enumerate(labels):
        if not isinstance(entry, dict):
            raise KustomizeError(f"labels[{index}]: expected a mapping")
        specs = parse_field_specs(entry.get("fields"), f"labels[{index}].fields")
        try:
            if bool_value(entry.get("includeSelectors"), "Label.labels.includeSelectors"):
                specs = merge_field_specs(specs, config.common_labels)
            else:
                if bool_value(entry.get("includeTemplates"), "Label.labels.includeTemplates"):
                    specs = merge_field_specs(specs, config.template_labels)
                specs = merge_field_specs(specs, [METADATA_LABELS])
        except KustomizeError as exc:
            raise KustomizeError(f"failed to merge labels: {exc}") from exc
        _set_map_entries(resources, string_map(entry.get("pairs"), "Label.labels.pairs"), specs)
    common = string_map(common_labels, "Kustomization.commonLabels")
    _set_map_entries(resources, common, config.common_labels)


def apply_annotations(
    resources: ResourceList, annotations: dict[str, Any], config: TransformerConfig | None = None
) -> None:
    """kustomize's `commonAnnotations`: `metadata.annotations` of every object and the
    annotations of pod templates (and CronJobs' job templates)."""
    common = string_map(annotations, "Kustomization.commonAnnotations")
    _set_map_entries(resources, common, (config or _DEFAULT).common_annotations)


def _set_map_entries(
    resources: ResourceList, entries: dict[str, str], specs: list[FieldSpec]
) -> None:
    if not entries:
        return
    items = sorted(entries.items())

    def set_entries(container: Any, key: Any) -> None:
        target = container[key]
        if not isinstance(target, dict):
            raise KustomizeError(
                f"wrong node kind: expected MappingNode but got {type(target).__name__}"
            )
        for name, value in items:
            target[name] = value

    for resource in resources:
        apply_field_specs(resource.obj, specs, set_entries, CREATE_MAP)


# --- images ----------------------------------------------------------------------------------


def apply_images(
    resources: ResourceList, images: list[dict[str, Any]], config: TransformerConfig | None = None
) -> None:
    """kustomize's `images`: for each entry, change the name, tag and digest of matching
    images in every `containers` and `initContainers` list at any depth (not in
    CustomResourceDefinitions), then at kustomize's image field specs.

    `name` matches an image by its name, tagged or pinned (`@sha256:` digests only) or not;
    kustomize reads it as a regular expression. `newTag` drops a digest and `digest` a tag,
    unless both are given.
    """
    for index, image in enumerate(images):
        if not isinstance(image, dict):
            raise KustomizeError(f"images[{index}]: expected a mapping")
        update = _ImageUpdate(
            name=string_value(image.get("name"), "Image.images.name"),
            new_name=string_value(image.get("newName"), "Image.images.newName"),
            new_tag=string_value(image.get("newTag"), "Image.images.newTag"),
            digest=string_value(image.get("digest"), "Image.images.digest"),
        )
        # kustomize never changes images in CustomResourceDefinitions.
        targets = [r for r in resources if r.kind != "CustomResourceDefinition"]
        for resource in targets:
            _update_containers_anywhere(resource.obj, update)
        for resource in targets:
            apply_field_specs(resource.obj, (config or _DEFAULT).images, update.set_in)


class _ImageUpdate:
    def __init__(self, name: str, new_name: str, new_tag: str, digest: str) -> None:
        self.new_name = new_name
        self.new_tag = new_tag
        self.digest = digest
        try:
            self.pattern: re.Pattern[str] | None = re.compile(
                "^" + name + r"(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$"
            )
        except re.error:
            # Go ignores the error and matches nothing.
            self.pattern = None

    def set_in(self, container: Any, key: Any) -> None:
        value = container[key]
        if isinstance(value, dict | list):
            raise KustomizeError(f"wrong node kind: expected ScalarNode for image {value!r}")
        if value is None or self.pattern is None:
            return
        image = scalar_text(value)
        if not self.pattern.match(image):
            return
        name, tag, digest = split_image(image)
        if self.new_name:
            name = self.new_name
        if self.new_tag and self.digest:
            tag, digest = self.new_tag, self.digest
        elif self.new_tag:
            tag, digest = self.new_tag, ""
        elif self.digest:
            tag, digest = "", self.digest
        if tag:
            name += ":" + tag
        if digest:
            name += "@" + digest
        container[key] = name


def _update_containers_anywhere(node: object, update: _ImageUpdate) -> None:
    # kustomize's legacy image filter: any field named containers or initContainers holding
    # a list, at any depth.
    if isinstance(node, dict):
        for key, value in node.items():
            _update_containers_anywhere(value, update)
            if key in ("containers", "initContainers") and isinstance(value, list):
                for container in value:
                    if isinstance(container, dict) and container.get("image") is not None:
                        update.set_in(container, "image")
    elif isinstance(node, list):
        for item in node:
            _update_containers_anywhere(item, update)


def split_image(image: str) -> tuple[str, str, str]:
    """Name, tag and digest of an image reference; a registry's `host:port/` is part of the
    name."""
    slash = image.find("/")
    offset = slash if slash > 0 else 0
    search = image[offset:]
    at = search.find("@")
    colon = search.find(":")
    if colon < 0 and at < 0:
        return image, "", ""
    if at >= 0 and (at < colon or colon < 0):
        return image[: offset + at], "", image[offset + at + 1 :]
    if at >= 0 and colon >= 0:
        return (
            image[: offset + colon],
            image[offset + colon + 1 : offset + at],
            image[offset + at + 1 :],
        )
    return image[: offset + colon], image[offset + colon + 1 :], ""


# --- replicas --------------------------------------------------------------------------------


def apply_replicas(
    resources: ResourceList, replicas: list[dict[str, Any]], config: TransformerConfig | None = None
) -> None:
    """kustomize's `replicas`: set `spec.replicas` of the Deployments, StatefulSets,
    ReplicaSets and ReplicationControllers (of any group) that have or had the given name."""
    specs = (config or _DEFAULT).replicas
    for index, replica in enumerate(replicas):
        if not isinstance(replica, dict):
            raise KustomizeError(f"replicas[{index}]: expected a mapping")
        name = string_value(replica.get("name"), "Replica.replicas.name")
        count = int_value(replica.get("count"), "Replica.replicas.count")
        found = False
        for spec in specs:
            matched = [
                r
                for r in resources
                if any(
                    rid.name == name
                    and gvk_selected(
                        rid.group, rid.version, rid.kind, spec.group, spec.version, spec.kind
                    )
                    for rid in r.ids()
                )
            ]
            found = found or bool(matched)
            for resource in matched:
                apply_field_specs(resource.obj, [spec], _set_count(count), CREATE_SCALAR)
        if not found:
            kinds = " ".join(
                f"{s.kind or '[noKind]'}.{s.version or '[noVer]'}.{s.group or '[noGrp]'}"
                for s in specs
            )
            raise KustomizeError(
                f"resource with name {name} does not match a config with the following GVK "
                f"[{kinds}]"
            )


def _set_count(count: int) -> Any:
    def set_count(container: Any, key: Any) -> None:
        _require_scalar(container[key], "replicas must be a scalar")
        container[key] = count

    return set_count

"""Field specs: where in an object kustomize's builtin transformers look, and how they walk there.

A field spec names a path (`spec/template/metadata/labels`), the kinds it applies to and whether
missing fields are created. The default lists below are kustomize v5.5.0's (the constants of
`api/internal/konfig/builtinpluginconsts`, as compiled into `kubectl` 1.32); the walk follows
`api/filters/fieldspec`: a path element crosses a mapping by key and a sequence by visiting
every element, `[]` marks a sequence that is never created, and `\\/` escapes a slash in a key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ._errors import KustomizeError, json_kind
from ._resource import ResId, split_api_version


@dataclass(frozen=True)
class FieldSpec:
    """A path in objects of the selected group/version/kind (empty selects any)."""

    path: str
    kind: str = ""
    group: str = ""
    version: str = ""
    create: bool = False

    def selects(self, group: str, version: str, kind: str) -> bool:
        return gvk_selected(group, version, kind, self.group, self.version, self.kind)

    def selects_object(self, obj: dict[str, Any]) -> bool:
        group, version = split_api_version(str(obj.get("apiVersion") or ""))
        return self.selects(group, version, str(obj.get("kind") or ""))


def gvk_selected(
    group: str, version: str, kind: str, sel_group: str, sel_version: str, sel_kind: str
) -> bool:
    """kustomize's `Gvk.IsSelected`: every non-empty part of the selector must be equal."""
    return (
        (not sel_group or group == sel_group)
        and (not sel_version or version == sel_version)
        and (not sel_kind or kind == sel_kind)
    )


def parse_field_specs(raw: object, where: str) -> list[FieldSpec]:
    """Field specs written in a kustomization (`labels[].fields`), as kustomize reads them."""
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise KustomizeError(f"{where}: expected a list of field specs")
    specs = []
    for item in raw:
        if not isinstance(item, dict):
            raise KustomizeError(f"{where}: expected a field spec mapping, got {item!r}")
        specs.append(
            FieldSpec(
                path=str(item.get("path") or ""),
                kind=str(item.get("kind") or ""),
                group=str(item.get("group") or ""),
                version=str(item.get("version") or ""),
                create=bool_value(item.get("create"), "FieldSpec.create"),
            )
        )
    return specs


def merge_field_specs(specs: list[FieldSpec], incoming: list[FieldSpec]) -> list[FieldSpec]:
    """kustomize's `FsSlice.MergeAll`: skip specs already present (same path, selecting
    kind), fail when one differs only in `create`."""
    result = list(specs)
    for spec in incoming:
        for existing in result:
            if existing.path == spec.path and gvk_selected(
                existing.group, existing.version, existing.kind, spec.group, spec.version, spec.kind
            ):
                if existing.create != spec.create:
                    raise KustomizeError("conflicting fieldspecs")
                break
        else:
            result.append(spec)
    return result


# --- walking a path --------------------------------------------------------------------------

# A found field: the container holding it and its key (an index for sequence elements), so
# that setters can replace scalars in place.
Slot = tuple[Any, Any]

CREATE_MAP = "map"
CREATE_SCALAR = "scalar"


def split_path(path: str) -> list[str]:
    parts: list[str] = []
    for piece in path.split("/"):
        if parts and parts[-1].endswith("\\"):
            parts[-1] = parts[-1][:-1] + "/" + piece
        else:
            parts.append(piece)
    return parts


def find_fields(obj: dict[str, Any], spec: FieldSpec, create_kind: str | None = None) -> list[Slot]:
    """The fields at `spec.path` in `obj` (which the spec must select).

    With `spec.create` and a `create_kind`, missing mappings on the way are created and a
    missing last field becomes an empty mapping or string; null values count as missing.
    """
    found: list[Slot] = []
    creating = spec.create and create_kind is not None

    def visit(container: Any, key: Any, path: list[str]) -> None:
        node = container[key]
        if not path:
            found.append((container, key))
        elif isinstance(node, list):
            for index in range(len(node)):
                visit(node, index, path)
        elif isinstance(node, dict):
            step(node, path)
        else:
            raise KustomizeError(
                f"obj '{obj.get('kind')}/{_name(obj)}' at path '{spec.path}': "
                "expected sequence or mapping node"
            )

    def step(mapping: dict[str, Any], path: list[str]) -> None:
        name = path[0]
        is_seq = name.endswith("[]")
        if is_seq:
            name = name[:-2]
        if mapping.get(name) is None:
            if not creating or is_seq:
                return
            if len(path) > 1:
                mapping[name] = {}
            else:
                mapping[name] = {} if create_kind == CREATE_MAP else ""
        visit(mapping, name, path[1:])

    path = split_path(spec.path)
    if path:
        step(obj, path)
    return found


def _name(obj: dict[str, Any]) -> str:
    meta = obj.get("metadata")
    return str(meta.get("name") or "") if isinstance(meta, dict) else ""


def apply_field_specs(
    obj: dict[str, Any],
    specs: list[FieldSpec],
    setter: Callable[[Any, Any], None],
    create_kind: str | None = None,
) -> None:
    """Call `setter(container, key)` for every field the specs selecting `obj` reach."""
    for spec in specs:
        if spec.selects_object(obj):
            for container, key in find_fields(obj, spec, create_kind):
                setter(container, key)


# --- values read from a kustomization ----------------------------------------------------------
#
# kustomize decodes a kustomization into Go types, so a number where a string belongs is an
# error, worded by encoding/json with the Go field (`ConfigMapArgs.configMapGenerator.name`).


def _type_error(value: object, go_field: str, go_type: str) -> KustomizeError:
    found = json_kind(value)
    if found == "number" and go_type == "int64":
        found = f"number {value}"
    return KustomizeError(
        f"invalid Kustomization: json: cannot unmarshal {found} into Go struct field "
        f"{go_field} of type {go_type}"
    )


def string_value(value: object, go_field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _type_error(value, go_field, "string")
    return value


def string_list(value: object, go_field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _type_error(value, go_field, "[]string")
    return [string_value(item, go_field) for item in value]


def string_map(value: object, go_field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _type_error(value, go_field, "map[string]string")
    return {str(k): string_value(v, go_field) for k, v in value.items()}


def bool_value(value: object, go_field: str) -> bool:
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _type_error(value, go_field, "bool")
    return value


def int_value(value: object, go_field: str) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise _type_error(value, go_field, "int64")
    return value


# --- errors ----------------------------------------------------------------------------------


def go_resid(rid: ResId) -> str:
    """A ResId as Go's `%#v` prints it in kustomize's errors."""
    scoped = "true" if rid.is_cluster_scoped() else "false"
    return (
        f'resid.ResId{{Gvk:resid.Gvk{{Group:"{rid.group}", Version:"{rid.version}", '
        f'Kind:"{rid.kind}", isClusterScoped:{scoped}}}, Name:"{rid.name}", '
        f'Namespace:"{rid.namespace}"}}'
    )


# --- the default field specs of kustomize v5.5.0 -----------------------------------------------


def _specs(
    path: str, kinds: str, group: str = "", version: str = "", create: bool = False
) -> list[FieldSpec]:
    return [FieldSpec(path, kind, group, version, create) for kind in kinds.split()]


_AFFINITY_SELECTORS = [
    "spec/template/spec/affinity/podAffinity/preferredDuringSchedulingIgnoredDuringExecution"
    "/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAffinity/requiredDuringSchedulingIgnoredDuringExecution"
    "/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/preferredDuringSchedulingIgnoredDuringExecution"
    "/podAffinityTerm/labelSelector/matchLabels",
    "spec/template/spec/affinity/podAntiAffinity/requiredDuringSchedulingIgnoredDuringExecution"
    "/labelSelector/matchLabels",
    "spec/template/spec/topologySpreadConstraints/labelSelector/matchLabels",
]

# Selectors: what `commonLabels` and `labels` with `includeSelectors` add to besides templates.
SELECTOR_LABELS: list[FieldSpec] = [
    FieldSpec("spec/selector", "Service", version="v1", create=True),
    FieldSpec("spec/selector", "ReplicationController", version="v1", create=True),
    FieldSpec("spec/selector/matchLabels", "Deployment", create=True),
    *[FieldSpec(path, "Deployment", group="apps") for path in _AFFINITY_SELECTORS],
    FieldSpec("spec/selector/matchLabels", "ReplicaSet", create=True),
    FieldSpec("spec/selector/matchLabels", "DaemonSet", create=True),
    FieldSpec("spec/selector/matchLabels", "StatefulSet", group="apps", create=True),
    *[FieldSpec(path, "StatefulSet", group="apps") for path in _AFFINITY_SELECTORS],
    FieldSpec("spec/selector/matchLabels", "Job", group="batch"),
    FieldSpec("spec/jobTemplate/spec/selector/matchLabels", "CronJob", group="batch"),
    FieldSpec("spec/selector/matchLabels", "PodDisruptionBudget", group="policy"),
    FieldSpec("spec/podSelector/matchLabels", "NetworkPolicy", group="networking.k8s.io"),
    FieldSpec("spec/ingress/from/podSelector/matchLabels", "NetworkPolicy", "networking.k8s.io"),
    FieldSpec("spec/egress/to/podSelector/matchLabels", "NetworkPolicy", "networking.k8s.io"),
]

METADATA_LABELS = FieldSpec("metadata/labels", create=True)

# Metadata, pod and claim templates: what `labels` with `includeTemplates` adds to.
TEMPLATE_LABELS: list[FieldSpec] = [
    METADATA_LABELS,
    FieldSpec("spec/template/metadata/labels", "ReplicationController", version="v1", create=True),
    *_specs("spec/template/metadata/labels", "Deployment ReplicaSet DaemonSet", create=True),
    FieldSpec("spec/template/metadata/labels", "StatefulSet", group="apps", create=True),
    FieldSpec("spec/volumeClaimTemplates[]/metadata/labels", "StatefulSet", "apps", create=True),
    FieldSpec("spec/template/metadata/labels", "Job", group="batch", create=True),
    FieldSpec("spec/jobTemplate/metadata/labels", "CronJob", group="batch", create=True),
    FieldSpec("spec/jobTemplate/spec/template/metadata/labels", "CronJob", "batch", create=True),
]

COMMON_LABELS: list[FieldSpec] = [*SELECTOR_LABELS, *TEMPLATE_LABELS]

COMMON_ANNOTATIONS: list[FieldSpec] = [
    FieldSpec("metadata/annotations", create=True),
    FieldSpec(
        "spec/template/metadata/annotations", "ReplicationController", version="v1", create=True
    ),
    *_specs(
        "spec/template/metadata/annotations",
        "Deployment ReplicaSet DaemonSet StatefulSet",
        create=True,
    ),
    FieldSpec("spec/template/metadata/annotations", "Job", group="batch", create=True),
    FieldSpec("spec/jobTemplate/metadata/annotations", "CronJob", group="batch", create=True),
    FieldSpec(
        "spec/jobTemplate/spec/template/metadata/annotations", "CronJob", "batch", create=True
    ),
]

# `metadata/namespace` itself is set by the namespace transformer on namespaced kinds only.
NAMESPACE: list[FieldSpec] = [
    FieldSpec("metadata/name", "Namespace", create=True),
    FieldSpec("spec/service/namespace", "APIService", "apiregistration.k8s.io", create=True),
    FieldSpec(
        "spec/conversion/webhook/clientConfig/service/namespace",
        "CustomResourceDefinition",
        "apiextensions.k8s.io",
    ),
]

IMAGES: list[FieldSpec] = [
    FieldSpec("spec/containers[]/image", create=True),
    FieldSpec("spec/initContainers[]/image", create=True),
    FieldSpec("spec/template/spec/containers[]/image", create=True),
    FieldSpec("spec/template/spec/initContainers[]/image", create=True),
]

# In kustomize's sorted order, which its "does not match" error lists.
REPLICAS: list[FieldSpec] = _specs(
    "spec/replicas", "Deployment StatefulSet ReplicaSet ReplicationController", create=True
)


@dataclass(frozen=True)
class NameReference:
    """Objects of the target kind are referred to by name from the referrer fields."""

    kind: str
    group: str
    version: str
    referrers: tuple[FieldSpec, ...]


_POD_CONFIGMAP = [
    "volumes/configMap/name",
    "containers/env/valueFrom/configMapKeyRef/name",
    "initContainers/env/valueFrom/configMapKeyRef/name",
    "containers/envFrom/configMapRef/name",
    "initContainers/envFrom/configMapRef/name",
    "volumes/projected/sources/configMap/name",
]
_POD_SECRET = [
    "volumes/secret/secretName",
    "containers/env/valueFrom/secretKeyRef/name",
    "initContainers/env/valueFrom/secretKeyRef/name",
    "containers/envFrom/secretRef/name",
    "initContainers/envFrom/secretRef/name",
    "imagePullSecrets/name",
    "volumes/projected/sources/secret/name",
]
# Kinds whose pod template is at spec/template and which reference ConfigMaps and Secrets.
_TEMPLATED = "Deployment ReplicaSet DaemonSet StatefulSet Job"
# Kinds whose pod template is at spec/template and which reference accounts, claims, classes.
_TEMPLATED_WITH_RC = "StatefulSet Deployment ReplicationController Job DaemonSet"


def _pod_refs(pod_paths: list[str]) -> list[FieldSpec]:
    specs = [FieldSpec("spec/" + p, "Pod", version="v1") for p in pod_paths]
    specs += [FieldSpec("template/spec/" + p, "PodTemplate") for p in pod_paths]
    for path in pod_paths:
        specs += _specs("spec/template/spec/" + path, _TEMPLATED)
    specs += [FieldSpec("spec/jobTemplate/spec/template/spec/" + p, "CronJob") for p in pod_paths]
    return specs


def _workload_refs(pod_path: str) -> list[FieldSpec]:
    return [
        FieldSpec("spec/" + pod_path, "Pod"),
        *_specs("spec/template/spec/" + pod_path, _TEMPLATED_WITH_RC),
        FieldSpec("spec/jobTemplate/spec/template/spec/" + pod_path, "CronJob"),
    ]


_RBAC = "rbac.authorization.k8s.io"
_ADMISSION = "admissionregistration.k8s.io"

NAME_REFERENCES: list[NameReference] = [
    *[
        NameReference(
            kind, "", "", (FieldSpec("spec/scaleTargetRef/name", "HorizontalPodAutoscaler"),)
        )
        for kind in ("Deployment", "ReplicationController", "ReplicaSet", "StatefulSet")
    ],
    NameReference(
        "ConfigMap",
        "",
        "v1",
        (
            *_pod_refs(_POD_CONFIGMAP),
            FieldSpec("spec/configSource/configMap", "Node"),
            *_specs("rules/resourceNames", "Role ClusterRole"),
            FieldSpec(
                "metadata/annotations/nginx.ingress.kubernetes.io\\/fastcgi-params-configmap",
                "Ingress",
            ),
        ),
    ),
    NameReference(
        "Secret",
        "",
        "v1",
        (
            *_pod_refs(_POD_SECRET),
            FieldSpec("spec/tls/secretName", "Ingress"),
            FieldSpec("metadata/annotations/ingress.kubernetes.io\\/auth-secret", "Ingress"),
            FieldSpec("metadata/annotations/nginx.ingress.kubernetes.io\\/auth-secret", "Ingress"),
            FieldSpec(
                "metadata/annotations/nginx.ingress.kubernetes.io\\/auth-tls-secret", "Ingress"
            ),
            FieldSpec("imagePullSecrets/name", "ServiceAccount"),
            *[
                FieldSpec("parameters/" + p, "StorageClass")
                for p in ("secretName", "adminSecretName", "userSecretName", "secretRef")
            ],
            *_specs("rules/resourceNames", "Role ClusterRole"),
            FieldSpec(
                "spec/template/spec/containers/env/valueFrom/secretKeyRef/name",
                "Service",
                "serving.knative.dev",
                "v1",
            ),
            FieldSpec("spec/azureFile/secretName", "PersistentVolume"),
        ),
    ),
    NameReference(
        "Service",
        "",
        "v1",
        (
            FieldSpec("spec/serviceName", "StatefulSet", "apps"),
            FieldSpec("spec/rules/http/paths/backend/serviceName", "Ingress"),
            FieldSpec("spec/backend/serviceName", "Ingress"),
            FieldSpec("spec/rules/http/paths/backend/service/name", "Ingress"),
            FieldSpec("spec/defaultBackend/service/name", "Ingress"),
            FieldSpec("spec/service/name", "APIService", "apiregistration.k8s.io"),
            FieldSpec(
                "webhooks/clientConfig/service", "ValidatingWebhookConfiguration", _ADMISSION
            ),
            FieldSpec("webhooks/clientConfig/service", "MutatingWebhookConfiguration", _ADMISSION),
        ),
    ),
    NameReference("Role", _RBAC, "", (FieldSpec("roleRef/name", "RoleBinding", _RBAC),)),
    NameReference(
        "ClusterRole",
        _RBAC,
        "",
        (
            FieldSpec("roleRef/name", "RoleBinding", _RBAC),
            FieldSpec("roleRef/name", "ClusterRoleBinding", _RBAC),
        ),
    ),
    NameReference(
        "ServiceAccount",
        "",
        "v1",
        (
            FieldSpec("subjects", "RoleBinding", _RBAC),
            FieldSpec("subjects", "ClusterRoleBinding", _RBAC),
            *_workload_refs("serviceAccountName"),
        ),
    ),
    NameReference(
        "PersistentVolumeClaim",
        "",
        "v1",
        tuple(_workload_refs("volumes/persistentVolumeClaim/claimName")),
    ),
    NameReference(
        "PersistentVolume",
        "",
        "v1",
        (
            FieldSpec("spec/volumeName", "PersistentVolumeClaim"),
            FieldSpec("rules/resourceNames", "ClusterRole"),
        ),
    ),
    NameReference(
        "StorageClass",
        "storage.k8s.io",
        "v1",
        (
            *_specs("spec/storageClassName", "PersistentVolume PersistentVolumeClaim"),
            FieldSpec("spec/volumeClaimTemplates/spec/storageClassName", "StatefulSet"),
        ),
    ),
    NameReference(
        "PriorityClass", "scheduling.k8s.io", "v1", tuple(_workload_refs("priorityClassName"))
    ),
    # kustomize's own data names the group "networking.k8s.io/v1", so no IngressClass is
    # ever selected and Ingresses keep the class name they were written with.
    NameReference(
        "IngressClass",
        "networking.k8s.io/v1",
        "v1",
        (FieldSpec("spec/ingressClassName", "Ingress"),),
    ),
    NameReference(
        "ValidatingAdmissionPolicy",
        _ADMISSION,
        "",
        (FieldSpec("spec/policyName", "ValidatingAdmissionPolicyBinding", _ADMISSION),),
    ),
]


# --- the configuration of a build ------------------------------------------------------------


@dataclass
class TransformerConfig:
    """The field specs the transformers of a kustomization use: kustomize's defaults, merged
    with those of the kustomizations below it and of its `configurations` files and `crds`
    (kustomize's `builtinconfig.TransformerConfig`)."""

    name_prefix: list[FieldSpec] = field(default_factory=list)
    name_suffix: list[FieldSpec] = field(default_factory=list)
    namespace: list[FieldSpec] = field(default_factory=list)
    common_labels: list[FieldSpec] = field(default_factory=list)
    template_labels: list[FieldSpec] = field(default_factory=list)
    common_annotations: list[FieldSpec] = field(default_factory=list)
    images: list[FieldSpec] = field(default_factory=list)
    replicas: list[FieldSpec] = field(default_factory=list)
    var_reference: list[FieldSpec] = field(default_factory=list)
    name_references: list[NameReference] = field(default_factory=list)

    @classmethod
    def default(cls) -> TransformerConfig:
        """kustomize v5.5.0's defaults (`var_reference` is left to the vars code)."""
        return cls(
            name_prefix=[FieldSpec("metadata/name")],
            name_suffix=[FieldSpec("metadata/name")],
            namespace=list(NAMESPACE),
            common_labels=list(COMMON_LABELS),
            template_labels=list(TEMPLATE_LABELS),
            common_annotations=list(COMMON_ANNOTATIONS),
            images=list(IMAGES),
            replicas=list(REPLICAS),
            name_references=list(NAME_REFERENCES),
        )

    def merge(self, other: TransformerConfig) -> TransformerConfig:
        """Both configurations: field specs already present are skipped, one that differs
        only in `create` is an error; name references to the same kind are joined."""
        merged = TransformerConfig()
        for attribute, go_name in _CONFIG_FIELDS:
            try:
                specs = merge_field_specs(getattr(self, attribute), getattr(other, attribute))
            except KustomizeError as exc:
                raise KustomizeError(f"failed to merge {go_name} fieldSpec: {exc}") from exc
            setattr(merged, attribute, specs)
        references = list(self.name_references)
        for incoming in other.name_references:
            for index, existing in enumerate(references):
                if (existing.group, existing.version, existing.kind) == (
                    incoming.group,
                    incoming.version,
                    incoming.kind,
                ):
                    referrers = merge_field_specs(
                        list(existing.referrers), list(incoming.referrers)
                    )
                    references[index] = NameReference(
                        existing.kind, existing.group, existing.version, tuple(referrers)
                    )
                    break
            else:
                references.append(incoming)
        merged.name_references = references
        return merged

    @classmethod
    def from_configuration(cls, document: object, source: str) -> TransformerConfig:
        """A `configurations` file of a kustomization (keys `namePrefix`, `nameReference`...)."""
        if document is None:
            return cls()
        if not isinstance(document, dict):
            raise KustomizeError(f"'{source}': expected a transformer configuration mapping")
        config = cls()
        for attribute, key in _CONFIG_KEYS:
            setattr(config, attribute, parse_field_specs(document.get(key), f"{source}: {key}"))
        references = document.get("nameReference") or []
        if not isinstance(references, list):
            raise KustomizeError(f"'{source}': nameReference: expected a list")
        for entry in references:
            if not isinstance(entry, dict):
                raise KustomizeError(f"'{source}': nameReference: expected a mapping")
            referrers = parse_field_specs(entry.get("fieldSpecs"), f"{source}: nameReference")
            config = config.merge(
                cls(
                    name_references=[
                        NameReference(
                            string_value(entry.get("kind"), "NameBackReferences.kind"),
                            string_value(entry.get("group"), "NameBackReferences.group"),
                            string_value(entry.get("version"), "NameBackReferences.version"),
                            tuple(referrers),
                        )
                    ]
                )
            )
        return config

    @classmethod
    def from_crd_definitions(cls, definitions: object, source: str) -> TransformerConfig:
        """The field specs an OpenAPI definitions file listed in `crds` declares.

        Every definition with `apiVersion`, `kind` and `metadata` properties is a kind (the
        last dot-separated part of its name, any group and version); its properties, followed
        through `$ref`s, declare with string extensions: `x-kubernetes-annotation` (an
        annotations map), `x-kubernetes-label-selector` (a labels map for commonLabels),
        `x-kubernetes-identity` (a name taking the prefix) and
        `x-kubernetes-object-ref-api-version` with `x-kubernetes-object-ref-kind` (a
        reference to an object of that kind, by its `name` key or the one
        `x-kubernetes-object-ref-name-key` gives).
        """
        if not isinstance(definitions, dict):
            raise KustomizeError(f"unable to parse open API definition from '{source}'")
        config = cls()
        for type_name in definitions:
            if not _looks_like_a_kind(_properties(definitions, str(type_name))):
                continue
            parts = str(type_name).split(".")
            if len(parts) < 3:
                raise KustomizeError(
                    "`api` should be specified in dot notation: group.version.kind"
                )
            found = cls()
            _load_crd_properties(found, parts[-1], definitions, str(type_name), [], set())
            config = config.merge(found)
        return config


# (attribute, the Go field named in merge errors)
_CONFIG_FIELDS = (
    ("name_prefix", "NamePrefix"),
    ("name_suffix", "NameSuffix"),
    ("namespace", "NameSpace"),
    ("common_labels", "CommonLabels"),
    ("template_labels", "TemplateLabels"),
    ("common_annotations", "CommonAnnotations"),
    ("images", "Images"),
    ("replicas", "Replicas"),
    ("var_reference", "VarReference"),
)

# (attribute, key in a configurations file)
_CONFIG_KEYS = (
    ("name_prefix", "namePrefix"),
    ("name_suffix", "nameSuffix"),
    ("namespace", "namespace"),
    ("common_labels", "commonLabels"),
    ("template_labels", "templateLabels"),
    ("common_annotations", "commonAnnotations"),
    ("images", "images"),
    ("replicas", "replicas"),
    ("var_reference", "varReference"),
)


def _properties(definitions: dict[str, Any], type_name: str) -> dict[str, Any]:
    definition = definitions.get(type_name)
    schema = definition.get("Schema") if isinstance(definition, dict) else None
    properties = schema.get("properties") if isinstance(schema, dict) else None
    return properties if isinstance(properties, dict) else {}


def _looks_like_a_kind(properties: dict[str, Any]) -> bool:
    return all(key in properties for key in ("kind", "apiVersion", "metadata"))


def _load_crd_properties(
    config: TransformerConfig,
    kind: str,
    definitions: dict[str, Any],
    type_name: str,
    path: list[str],
    seen: set[str],
) -> None:
    if type_name in seen:
        return
    seen = seen | {type_name}
    for name, prop in _properties(definitions, type_name).items():
        if not isinstance(prop, dict):
            continue
        here = [*path, str(name)]
        spec = FieldSpec("/".join(here), kind)

        def marked(extension: str, prop: dict[str, Any] = prop) -> bool:
            return isinstance(prop.get(extension), str)

        if marked("x-kubernetes-annotation"):
            config.common_annotations = merge_field_specs(config.common_annotations, [spec])
        if marked("x-kubernetes-label-selector"):
            config.common_labels = merge_field_specs(config.common_labels, [spec])
        if marked("x-kubernetes-identity"):
            config.name_prefix = merge_field_specs(config.name_prefix, [spec])
        if marked("x-kubernetes-object-ref-api-version") and marked("x-kubernetes-object-ref-kind"):
            name_key = prop.get("x-kubernetes-object-ref-name-key")
            referrer = FieldSpec(
                "/".join([*here, name_key if isinstance(name_key, str) else "name"]), kind
            )
            target = NameReference(
                prop["x-kubernetes-object-ref-kind"],
                "",
                prop["x-kubernetes-object-ref-api-version"],
                (referrer,),
            )
            merged = config.merge(TransformerConfig(name_references=[target]))
            config.name_references = merged.name_references
        ref = prop.get("$ref")
        if isinstance(ref, str) and ref:
            _load_crd_properties(config, kind, definitions, ref, here, seen)

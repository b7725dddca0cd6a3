"""The objects a build works on: `Resource` (one object and what kustomize tracks about it)
and `ResourceList` (the ordered set of them, unique by id)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ._errors import KustomizeError

__all__ = [
    "ResId",
    "Resource",
    "ResourceList",
    "is_cluster_scoped",
    "resources_from_documents",
    "split_api_version",
]

# kyaml's precomputed openapi data: the kinds that are certainly cluster scoped. Anything
# else (including unknown custom kinds) counts as namespaced, as in kustomize.
_CLUSTER_SCOPED = frozenset(
    [
        ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1beta1", "MutatingWebhookConfiguration"),
        ("admissionregistration.k8s.io/v1beta1", "ValidatingWebhookConfiguration"),
        ("apiextensions.k8s.io/v1", "CustomResourceDefinition"),
        ("apiextensions.k8s.io/v1beta1", "CustomResourceDefinition"),
        ("apiregistration.k8s.io/v1", "APIService"),
        ("apiregistration.k8s.io/v1beta1", "APIService"),
        ("certificates.k8s.io/v1", "CertificateSigningRequest"),
        ("certificates.k8s.io/v1beta1", "CertificateSigningRequest"),
        ("flowcontrol.apiserver.k8s.io/v1beta1", "FlowSchema"),
        ("flowcontrol.apiserver.k8s.io/v1beta1", "PriorityLevelConfiguration"),
        ("networking.k8s.io/v1", "IngressClass"),
        ("networking.k8s.io/v1beta1", "IngressClass"),
        ("node.k8s.io/v1", "RuntimeClass"),
        ("node.k8s.io/v1beta1", "RuntimeClass"),
        ("policy/v1beta1", "PodSecurityPolicy"),
        ("rbac.authorization.k8s.io/v1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"),
        ("rbac.authorization.k8s.io/v1beta1", "ClusterRole"),
        ("rbac.authorization.k8s.io/v1beta1", "ClusterRoleBinding"),
        ("scheduling.k8s.io/v1", "PriorityClass"),
        ("scheduling.k8s.io/v1beta1", "PriorityClass"),
        ("storage.k8s.io/v1", "CSIDriver"),
        ("storage.k8s.io/v1", "CSINode"),
        ("storage.k8s.io/v1", "StorageClass"),
        ("storage.k8s.io/v1", "VolumeAttachment"),
        ("storage.k8s.io/v1beta1", "CSIDriver"),
        ("storage.k8s.io/v1beta1", "CSINode"),
        ("storage.k8s.io/v1beta1", "StorageClass"),
        ("storage.k8s.io/v1beta1", "VolumeAttachment"),
        ("v1", "ComponentStatus"),
        ("v1", "Namespace"),
        ("v1", "Node"),
        ("v1", "NodeProxyOptions"),
        ("v1", "PersistentVolume"),
    ]
)


def is_cluster_scoped(api_version: str, kind: str) -> bool:
    """Whether kustomize knows the kind to be cluster scoped (ignores namespaces for it)."""
    return (api_version, kind) in _CLUSTER_SCOPED


def split_api_version(api_version: str) -> tuple[str, str]:
    """kyaml's ParseGroupVersion: `apps/v1` → (apps, v1); `v1` → ("", v1)."""
    group, slash, version = api_version.partition("/")
    if slash:
        return group, version
    if api_version == "builtin":
        return api_version, ""
    return "", api_version


def scalar_text(value: Any) -> str:
    """A scalar field as kustomize reads it from YAML (`name: true` is the name "true")."""
    if value is None:
        return ""
    if value is True:
        return "true"
    if value is False:
        return "false"
    return str(value)


@dataclass(frozen=True)
class ResId:
    """What identifies an object in a build: group, version, kind, name, namespace."""

    group: str
    version: str
    kind: str
    name: str
    namespace: str = ""

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def gvk(self) -> str:
        """As kustomize sorts by it: `apps_v1_Deployment`, `~G_v1_ConfigMap` for core."""
        return f"{self.group or '~G'}_{self.version or '~V'}_{self.kind or '~K'}"

    def is_cluster_scoped(self) -> bool:
        return is_cluster_scoped(self.api_version, self.kind)

    def effective_namespace(self) -> str:
        """kustomize's EffectiveNamespace: "" and `default` are one namespace, and
        cluster-scoped kinds have none."""
        if self.is_cluster_scoped():
            return "~X"
        return self.namespace if self.namespace not in ("", "default") else "default"

    def key(self) -> tuple[str, str, str, str, str]:
        """Equal for ids kustomize considers equal (ResId.Equals)."""
        return (self.group, self.version, self.kind, self.name, self.effective_namespace())

    def equals(self, other: ResId) -> bool:
        return self.key() == other.key()

    def gvkn_equals(self, other: ResId) -> bool:
        return (self.group, self.version, self.kind, self.name) == (
            other.group,
            other.version,
            other.kind,
            other.name,
        )

    def gvk_string(self) -> str:
        """kyaml's Gvk.String(): `Deployment.v1.apps`, `ConfigMap.v1.[noGrp]`."""
        return f"{self.kind or '[noKind]'}.{self.version or '[noVer]'}.{self.group or '[noGrp]'}"

    def __str__(self) -> str:
        # kyaml's ResId.String(): `ConfigMap.v1.[noGrp]/name.[noNs]`.
        return f"{self.gvk_string()}/{self.name or '[noName]'}.{self.namespace or '[noNs]'}"


@dataclass
class Resource:
    """One object of a build.

    `obj` is the object as a plain dict (what gets printed). kustomize also tracks, per object:
    where it came from (for errors and origin annotations), the ids it had before names were
    changed (for name references: a Deployment naming ConfigMap `cfg` must follow it to
    `dev-cfg-h29d89cmmt`), and, for generated ConfigMaps and Secrets, their merge behavior and
    whether their name gets the content hash.
    """

    obj: dict[str, Any]
    origin: str = ""  # file (relative to the build root) it was read from, or the generator
    previous: list[ResId] = field(default_factory=list)  # earlier ids, oldest first
    behavior: str = ""  # generated objects: create | merge | replace
    needs_hash: bool = False  # generated objects whose name gets the content hash suffix
    # Names set by the kustomization that produced it, for name references across overlays.
    refs_from: list[str] = field(default_factory=list)
    # buildMetadata: kustomize's Origin (path, or configuredIn + configuredBy) and the
    # transformers that ran over the object, as written in the annotations.
    origin_info: dict[str, Any] | None = None
    transformations: list[dict[str, Any]] = field(default_factory=list)
    # vars (deprecated) whose object reference matched this object.
    var_names: list[str] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return scalar_text(self.obj.get("apiVersion"))

    @property
    def kind(self) -> str:
        return scalar_text(self.obj.get("kind"))

    @property
    def metadata(self) -> dict[str, Any]:
        meta = self.obj.get("metadata")
        if not isinstance(meta, dict):
            meta = self.obj["metadata"] = {}
        return meta

    @property
    def name(self) -> str:
        meta = self.obj.get("metadata")
        return scalar_text(meta.get("name")) if isinstance(meta, dict) else ""

    @property
    def namespace(self) -> str:
        meta = self.obj.get("metadata")
        return scalar_text(meta.get("namespace")) if isinstance(meta, dict) else ""

    def id(self) -> ResId:
        group, version = split_api_version(self.api_version)
        return ResId(group, version, self.kind, self.name, self.namespace)

    def original_id(self) -> ResId:
        return self.previous[0] if self.previous else self.id()

    def set_name(self, name: str) -> None:
        """Rename, remembering the id it had (name references follow renames)."""
        if name != self.name:
            self.previous.append(self.id())
            self.metadata["name"] = name

    def set_namespace(self, namespace: str) -> None:
        if namespace != self.namespace:
            self.previous.append(self.id())
            if namespace:
                self.metadata["namespace"] = namespace
            else:
                self.metadata.pop("namespace", None)

    def ids(self) -> list[ResId]:
        """Every id this object has had, the current one last."""
        return [*self.previous, self.id()]

    def labels(self) -> dict[str, str]:
        return dict(self.metadata.get("labels") or {})

    def annotations(self) -> dict[str, str]:
        return dict(self.metadata.get("annotations") or {})


class ResourceList:
    """Resources in build order, each id at most once (kustomize's ResMap)."""

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        self._items: list[Resource] = []
        self.extend(resources)

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index: int) -> Resource:
        return self._items[index]

    def append(self, resource: Resource) -> None:
        """Add at the end; an object with an equal id already there is an error."""
        rid = resource.id()
        if self.get(rid) is not None:
            raise KustomizeError(f"may not add resource with an already registered id: {rid}")
        self._items.append(resource)

    def extend(self, resources: Iterable[Resource]) -> None:
        """`append` each, in order (kustomize's AppendAll)."""
        keys = {r.id().key() for r in self._items}
        for resource in resources:
            rid = resource.id()
            key = rid.key()
            if key in keys:
                raise KustomizeError(f"may not add resource with an already registered id: {rid}")
            keys.add(key)
            self._items.append(resource)

    def get(self, rid: ResId) -> Resource | None:
        """The object whose current id equals `rid` (namespace "" equal to `default`)."""
        key = rid.key()
        for resource in self._items:
            if resource.id().key() == key:
                return resource
        return None

    def get_by_any_id(self, rid: ResId) -> list[Resource]:
        """Objects that have, or ever had, an id equal to `rid`."""
        key = rid.key()
        return [r for r in self._items if any(i.key() == key for i in r.ids())]

    def index(self, resource: Resource) -> int:
        for position, item in enumerate(self._items):
            if item is resource:
                return position
        raise KustomizeError(f"resource {resource.id()} is not in the list")

    def remove(self, resource: Resource) -> None:
        del self._items[self.index(resource)]

    def replace(self, old: Resource, new: Resource) -> None:
        self._items[self.index(old)] = new

    def replace_all(self, resources: Iterable[Resource]) -> None:
        self._items = list(resources)

    def objects(self) -> list[dict[str, Any]]:
        return [r.obj for r in self._items]


# ---------------------------------------------------------------------------------------------
# Objects from the documents of a file, as kustomize's resource factory makes them.


def _go_map(values: Any) -> str:
    if not isinstance(values, dict):
        return "map[]"
    items = " ".join(f"{k}:{scalar_text(v)}" for k, v in sorted(values.items()))
    return f"map[{items}]"


def _meta_repr(obj: dict[str, Any]) -> str:
    """Go's %v of kyaml's ResourceMeta, as kustomize's errors print it."""
    meta = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    assert isinstance(meta, dict)
    return (
        f"{{{{{scalar_text(obj.get('apiVersion'))} {scalar_text(obj.get('kind'))}}} "
        f"{{{{{scalar_text(meta.get('name'))} {scalar_text(meta.get('namespace'))}}} "
        f"{_go_map(meta.get('labels'))} {_go_map(meta.get('annotations'))}}}}}"
    )


def _present(value: Any) -> bool:
    return value not in (None, "", {}, [])


def _validate(obj: dict[str, Any]) -> None:
    """kyaml's GetValidatedMetadata."""
    meta = obj.get("metadata")
    has_meta = _present(obj.get("apiVersion")) or _present(obj.get("kind"))
    if isinstance(meta, dict) and meta:
        has_meta = has_meta or any(
            _present(meta.get(k)) for k in ("name", "namespace", "labels", "annotations")
        )
    if not has_meta:
        raise KustomizeError("missing Resource metadata")
    kind = scalar_text(obj.get("kind"))
    if not kind:
        raise KustomizeError(f"missing kind in object {_meta_repr(obj)}")
    if kind.endswith("List"):
        return
    if not (isinstance(meta, dict) and _present(meta.get("name"))):
        raise KustomizeError(f"missing metadata.name in object {_meta_repr(obj)}")


def resources_from_documents(documents: Iterable[dict[str, Any]], origin: str) -> list[Resource]:
    """Objects of a file's documents: each validated (kind, name), and the items of `…List`
    kinds put in their place at the end, as kustomize's resource factory does."""
    queue = list(documents)
    for document in queue:
        _validate(document)
    found: list[Resource] = []
    while queue:
        document = queue.pop(0)
        kind = scalar_text(document.get("kind"))
        if not kind.endswith("List") or "items" not in document:
            found.append(Resource(obj=document, origin=origin))
            continue
        items = document["items"]
        if items is None:
            continue
        if not isinstance(items, list):
            raise KustomizeError(
                f"expected array in {kind}/items, but found {_go_type_name(items)}"
            )
        for item in items:
            if item is None or item == {}:
                continue
            if not isinstance(item, dict):
                raise KustomizeError("missing Resource metadata")
            _validate(item)
            queue.append(item)
    return found


def _go_type_name(value: Any) -> str:
    if isinstance(value, dict):
        return "map[string]interface {}"
    if isinstance(value, str):
        return "string"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float64"
    return type(value).__name__

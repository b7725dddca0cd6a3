"""Apply order and stages, as fluxcd/pkg/ssa orders objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._inventory import ObjMetadata

# fluxcd/pkg ssa `ReconcileOrder`: kinds applied first (in this order) and last; every other
# kind sits between them, ordered by group and kind.
_FIRST = (
    "CustomResourceDefinition",
    "Namespace",
    "ClusterClass",
    "RuntimeClass",
    "PriorityClass",
    "StorageClass",
    "VolumeSnapshotClass",
    "IngressClass",
    "GatewayClass",
    "ResourceQuota",
    "ServiceAccount",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Service",
    "LimitRange",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")
_RANK = {kind: i - len(_FIRST) for i, kind in enumerate(_FIRST)} | {
    kind: i + 1 for i, kind in enumerate(_LAST)
}


def sort_key(meta: ObjMetadata) -> tuple[int, str, str, str, str]:
    """Apply order: by kind rank, group, kind, then namespace and name. Deletion uses the
    reverse, so Namespaces and CRDs go last."""
    return (_RANK.get(meta.kind, 0), meta.group, meta.kind, meta.namespace, meta.name)


def is_crd(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "customresourcedefinition" and str(
        obj.get("apiVersion", "")
    ).startswith("apiextensions.k8s.io/")


def is_namespace(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "namespace" and obj.get("apiVersion") == "v1"


def is_cluster_role(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "clusterrole" and str(
        obj.get("apiVersion", "")
    ).startswith("rbac.authorization.k8s.io/")


def is_cluster_definition(obj: Mapping[str, Any]) -> bool:
    """The first stage, as Flux's `IsClusterDefinition`: CRDs, Namespaces and ClusterRoles
    (ClusterRoleBindings are not in it: they go with the rest)."""
    return is_crd(obj) or is_namespace(obj) or is_cluster_role(obj)


def is_class_definition(obj: Mapping[str, Any]) -> bool:
    """The second stage: kinds whose name ends with `Class` (StorageClass, IngressClass,
    PriorityClass, RuntimeClass, GatewayClass, …)."""
    return str(obj.get("kind", "")).endswith("Class")


def stages(objects: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Split objects into Flux's three stages: cluster definitions, class definitions, the rest."""
    definitions: list[dict[str, Any]] = []
    classes: list[dict[str, Any]] = []
    rest: list[dict[str, Any]] = []
    for obj in objects:
        if is_cluster_definition(obj):
            definitions.append(obj)
        elif is_class_definition(obj):
            classes.append(obj)
        else:
            rest.append(obj)
    return [definitions, classes, rest]

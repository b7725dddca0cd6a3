"""The order of a build's output: kustomize's `sortOptions` (legacy, its default, or fifo)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cmp_to_key
from typing import Any

from ._errors import KustomizeError
from ._resource import ResId, Resource

__all__ = ["LEGACY_ORDER_FIRST", "LEGACY_ORDER_LAST", "sort_resources"]

# kustomize's SortOrderTransformer defaults (its comment: "DO NOT CHANGE!"): these kinds
# first in this order, those last, everything else in between.
LEGACY_ORDER_FIRST = (
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
)
LEGACY_ORDER_LAST = ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def _type_orders(first: Sequence[str], last: Sequence[str]) -> dict[str, int]:
    orders = {kind: index - len(first) for index, kind in enumerate(first)}
    for index, kind in enumerate(last):
        orders[kind] = 1 + index
    return orders


def _compare(a: ResId, b: ResId, orders: dict[str, int]) -> int:
    """legacyIDSorter.Less as a comparison: by kind rank, then group/version/kind, then
    namespace and name."""
    if (a.group, a.version, a.kind) != (b.group, b.version, b.kind):
        rank_a, rank_b = orders.get(a.kind, 0), orders.get(b.kind, 0)
        if rank_a != rank_b:
            return -1 if rank_a < rank_b else 1
        gvk_a, gvk_b = a.gvk(), b.gvk()
        # kustomize puts the core Namespace kind before a grouped one ("~G" sorts last).
        if a.kind == b.kind == "Namespace" and (not a.group or not b.group):
            return -1 if gvk_a > gvk_b else 1
        return -1 if gvk_a < gvk_b else 1
    key_a = (a.namespace or "~X", a.name or "~N")
    key_b = (b.namespace or "~X", b.name or "~N")
    if key_a == key_b:
        return 0
    return -1 if f"{key_a[0]}|{key_a[1]}" < f"{key_b[0]}|{key_b[1]}" else 1


def sort_resources(
    resources: Sequence[Resource], sort_options: dict[str, Any] | None
) -> list[Resource]:
    """The resources in the order kustomize prints them.

    `sort_options` is the top-level kustomization's `sortOptions` (None: kustomize's default,
    the legacy order). Errors are the SortOrderTransformer's.
    """
    if sort_options is None:
        sort_options = {"order": "legacy"}
    order = sort_options.get("order", "")
    legacy = sort_options.get("legacySortOptions")
    if order not in ("fifo", "legacy"):
        raise KustomizeError("the field 'sortOptions.order' must be one of [fifo, legacy]")
    if order == "fifo":
        if legacy is not None:
            raise KustomizeError(
                "the field 'sortOptions.legacySortOptions' is set but the selected sort order "
                "is 'fifo', not 'legacy'"
            )
        return list(resources)
    if legacy is None:
        orders = _type_orders(LEGACY_ORDER_FIRST, LEGACY_ORDER_LAST)
    else:
        orders = _type_orders(legacy.get("orderFirst") or [], legacy.get("orderLast") or [])
    ids = {id(resource): resource.id() for resource in resources}
    key = cmp_to_key(lambda a, b: _compare(ids[id(a)], ids[id(b)], orders))
    return sorted(resources, key=key)

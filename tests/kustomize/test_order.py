"""kustomize's output order: legacy (the default, with its kind lists), custom legacy
lists, fifo."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.kustomize import KustomizeError
from tidegate.kustomize._order import LEGACY_ORDER_FIRST, LEGACY_ORDER_LAST, sort_resources
from tidegate.kustomize._resource import Resource


def _res(api_version: str, kind: str, name: str, namespace: str = "") -> Resource:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    return Resource(obj={"apiVersion": api_version, "kind": kind, "metadata": meta})


def _names(resources: list[Resource]) -> list[str]:
    return [f"{r.kind}/{r.namespace}/{r.name}" for r in resources]


def test_legacy_lists_are_kustomizes() -> None:
    assert LEGACY_ORDER_FIRST[:4] == (
        "Namespace",
        "ResourceQuota",
        "StorageClass",
        "CustomResourceDefinition",
    )
    assert LEGACY_ORDER_FIRST[-1] == "PodDisruptionBudget"
    assert LEGACY_ORDER_LAST == ("MutatingWebhookConfiguration", "ValidatingWebhookConfiguration")


def test_legacy_order() -> None:
    resources = [
        _res("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "v"),
        _res("example.com/v1", "Widget", "w"),
        _res("apps/v1", "Deployment", "d"),
        _res("v1", "Service", "s"),
        _res("v1", "Namespace", "n"),
        _res("batch/v1", "Job", "j"),
        _res("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", "m"),
    ]
    assert _names(sort_resources(resources, None)) == [
        "Namespace//n",
        "Service//s",
        "Deployment//d",
        "Job//j",  # unlisted kinds between, by group_version_kind: batch before example.com
        "Widget//w",
        "MutatingWebhookConfiguration//m",
        "ValidatingWebhookConfiguration//v",
    ]


def test_ties_are_broken_by_namespace_then_name() -> None:
    resources = [
        _res("v1", "ConfigMap", "b", "ns"),
        _res("v1", "ConfigMap", "a", "ns"),
        _res("v1", "ConfigMap", "z"),
        _res("v1", "ConfigMap", "c", "default"),
    ]
    # No namespace sorts as "~X", after any namespace.
    assert _names(sort_resources(resources, {"order": "legacy"})) == [
        "ConfigMap/default/c",
        "ConfigMap/ns/a",
        "ConfigMap/ns/b",
        "ConfigMap//z",
    ]


def test_same_kind_in_other_groups_by_group_version_kind() -> None:
    resources = [_res("extensions/v1beta1", "Deployment", "x"), _res("apps/v1", "Deployment", "y")]
    assert _names(sort_resources(resources, None)) == ["Deployment//y", "Deployment//x"]


def test_the_core_namespace_kind_comes_before_a_grouped_one() -> None:
    # By group_version_kind "~G_v1_Namespace" would come last; kustomize reverses that.
    resources = [_res("example.com/v1", "Namespace", "grouped"), _res("v1", "Namespace", "core")]
    assert _names(sort_resources(resources, None)) == ["Namespace//core", "Namespace//grouped"]


def test_custom_legacy_lists() -> None:
    resources = [_res("v1", "Namespace", "n"), _res("batch/v1", "Job", "j"), _res("v1", "Pod", "p")]
    options = {
        "order": "legacy",
        "legacySortOptions": {"orderFirst": ["Job"], "orderLast": ["Namespace"]},
    }
    assert _names(sort_resources(resources, options)) == ["Job//j", "Pod//p", "Namespace//n"]


def test_fifo_keeps_the_order() -> None:
    resources = [_res("v1", "Service", "s"), _res("v1", "Namespace", "n")]
    assert sort_resources(resources, {"order": "fifo"}) == resources


def test_invalid_options() -> None:
    with pytest.raises(KustomizeError, match=r"must be one of \[fifo, legacy\]"):
        sort_resources([], {"order": "random"})
    with pytest.raises(KustomizeError, match="legacySortOptions' is set but the selected"):
        sort_resources([], {"order": "fifo", "legacySortOptions": {"orderFirst": []}})

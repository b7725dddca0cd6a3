"""Taking over fields that kubectl owns, so that fields dropped from manifests disappear."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tidegate.apply import FieldManager, takeover_managers
from tidegate.apply._takeover import cleanup_patch, merge_fields, replace_managers
from tidegate.kube import Client

from .support import manager_for, managers

LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


def entry(manager: str, operation: str, fields: dict[str, Any], **extra: str) -> dict[str, Any]:
    return {
        "manager": manager,
        "operation": operation,
        "apiVersion": "v1",
        "fieldsType": "FieldsV1",
        "fieldsV1": fields,
        **extra,
    }


def test_merge_fields_is_a_union() -> None:
    a = {"f:data": {".": {}, "f:a": {}}, "f:metadata": {"f:labels": {"f:x": {}}}}
    b = {"f:data": {"f:b": {}}, "f:spec": {'k:{"port":80}': {".": {}}}}
    assert merge_fields(a, b) == {
        "f:data": {".": {}, "f:a": {}, "f:b": {}},
        "f:metadata": {"f:labels": {"f:x": {}}},
        "f:spec": {'k:{"port":80}': {".": {}}},
    }


def test_kubectl_entries_fold_into_the_apply_entry() -> None:
    entries = [
        entry("kustomize-controller", "Apply", {"f:data": {"f:a": {}}}),
        entry("kubectl-client-side-apply", "Update", {"f:data": {"f:b": {}}}),
        entry("kube-controller-manager", "Update", {"f:status": {}}),
        entry("kubectl-edit", "Update", {"f:data": {"f:c": {}}}),
        entry("kubectl", "Update", {"f:status": {}}, subresource="status"),
    ]
    managers_ = takeover_managers("kustomize-controller")
    out = replace_managers(entries, managers_, "kustomize-controller")
    assert out is not None
    assert [(e["manager"], e["operation"]) for e in out] == [
        ("kube-controller-manager", "Update"),
        ("kubectl", "Update"),  # a subresource entry stays
        ("kustomize-controller", "Apply"),
    ]
    assert out[-1]["fieldsV1"] == {"f:data": {"f:a": {}, "f:b": {}, "f:c": {}}}
    assert replace_managers(out, managers_, "kustomize-controller") is None


def test_first_match_is_renamed_when_there_is_no_apply_entry() -> None:
    entries = [
        entry("before-first-apply", "Update", {"f:data": {"f:a": {}}}),
        entry("kustomize-controller", "Update", {"f:data": {"f:b": {}}}),
        entry("other", "Apply", {"f:data": {"f:z": {}}}),
    ]
    out = replace_managers(
        entries, takeover_managers("kustomize-controller"), "kustomize-controller"
    )
    assert out == [
        entry("other", "Apply", {"f:data": {"f:z": {}}}),
        entry("kustomize-controller", "Apply", {"f:data": {"f:a": {}, "f:b": {}}}),
    ]


def test_cleanup_patch_removes_stale_metadata() -> None:
    live = {
        "metadata": {
            "annotations": {LAST_APPLIED: "{}", "keep": "1"},
            "labels": {"fluxcd.io/sync-gc-mark": "x"},
            "managedFields": [entry("tidegate", "Apply", {})],
        }
    }
    assert cleanup_patch(live, takeover_managers("tidegate"), "tidegate") == [
        {
            "op": "remove",
            "path": "/metadata/annotations/kubectl.kubernetes.io~1last-applied-configuration",
        },
        {"op": "remove", "path": "/metadata/labels/fluxcd.io~1sync-gc-mark"},
    ]
    assert takeover_managers("t", ["helm"])[-2:] == [
        FieldManager("helm", "Apply"),
        FieldManager("helm", "Update"),
    ]


def configmap(namespace: str, data: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": namespace},
        "data": data,
    }


@pytest.mark.cluster
async def test_kubectl_client_side_apply_fields_are_taken_over(
    kube: Client, namespace: str
) -> None:
    # What `kubectl apply` (client-side) leaves: an Update entry and the annotation.
    created = configmap(namespace, {"a": "1", "b": "2"})
    created["metadata"]["annotations"] = {LAST_APPLIED: json.dumps(created)}
    await kube.create(created, field_manager="kubectl-client-side-apply")

    manager = manager_for(kube)
    result = await manager.apply_all_staged([configmap(namespace, {"a": "1"})])
    assert result.to_map() == {f"ConfigMap/{namespace}/settings": "configured"}
    live = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert live["data"] == {"a": "1"}
    assert LAST_APPLIED not in (live["metadata"].get("annotations") or {})
    assert set(managers(live)) == {("kustomize-controller", "Apply")}

    again = await manager.apply_all_staged([configmap(namespace, {"a": "1"})])
    assert again.to_map() == {f"ConfigMap/{namespace}/settings": "unchanged"}


@pytest.mark.cluster
async def test_kubectl_edit_is_taken_over_after_an_apply(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    await manager.apply_all_staged([configmap(namespace, {"a": "1"})])
    # `kubectl edit` adds a field: an Update entry of a kubectl manager.
    await kube.patch(
        "v1", "ConfigMap", "settings", {"data": {"b": "2"}}, namespace, field_manager="kubectl-edit"
    )
    result = await manager.apply_all_staged([configmap(namespace, {"a": "1"})])
    assert result.to_map() == {f"ConfigMap/{namespace}/settings": "configured"}
    live = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert live["data"] == {"a": "1"}
    assert set(managers(live)) == {("kustomize-controller", "Apply")}

"""The `kustomize.toolkit.fluxcd.io/ssa` and `/reconcile` annotations, on the real API server."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.kube import Client, NotFound

from .support import manager_for, managers

pytestmark = pytest.mark.cluster

SSA = "kustomize.toolkit.fluxcd.io/ssa"


def configmap(namespace: str, data: dict[str, str], **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "settings", "namespace": namespace, "annotations": annotations},
        "data": data,
    }


async def kubectl_create(kube: Client, obj: dict[str, Any]) -> None:
    """As `kubectl apply` (client-side) creates an object: operation Update."""
    await kube.create(obj, field_manager="kubectl-client-side-apply")


async def test_override_takes_fields_from_other_appliers(kube: Client, namespace: str) -> None:
    # Another server-side applier owns `a`; Override (the default) forces ownership.
    await kube.apply(configmap(namespace, {"a": "theirs"}), field_manager="helm")
    result = await manager_for(kube).apply_all_staged(
        [configmap(namespace, {"a": "ours"}, **{SSA: "Override"})]
    )
    assert result.to_map() == {f"ConfigMap/{namespace}/settings": "configured"}
    live = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert live["data"] == {"a": "ours"}
    assert "f:a" in managers(live)[("kustomize-controller", "Apply")]["fieldsV1"]["f:data"]


async def test_merge_leaves_kubectl_fields_alone(kube: Client, namespace: str) -> None:
    await kubectl_create(kube, configmap(namespace, {"a": "1", "b": "2"}))
    result = await manager_for(kube).apply_all_staged(
        [configmap(namespace, {"a": "1"}, **{SSA: "Merge"})]
    )
    assert result.to_map() == {f"ConfigMap/{namespace}/settings": "configured"}
    live = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert live["data"] == {"a": "1", "b": "2"}
    assert ("kubectl-client-side-apply", "Update") in managers(live)


async def test_if_not_present_creates_but_never_updates(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    created = await manager.apply_all_staged(
        [configmap(namespace, {"a": "1"}, **{SSA: "IfNotPresent"})]
    )
    assert created.to_map() == {f"ConfigMap/{namespace}/settings": "created"}
    before = await kube.get("v1", "ConfigMap", "settings", namespace)

    skipped = await manager.apply_all_staged(
        [configmap(namespace, {"a": "2"}, **{SSA: "ifnotpresent"})]
    )
    assert skipped.to_map() == {f"ConfigMap/{namespace}/settings": "skipped"}
    after = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert after["data"] == {"a": "1"}
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    # Skipped objects stay in the inventory (so they are not pruned), as in Flux.
    assert skipped.inventory().to_status()["entries"] == [
        {"id": f"{namespace}_settings__ConfigMap", "v": "v1"}
    ]


async def test_ignore_skips_on_manifest_or_in_cluster(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    ignored = await manager.apply_all_staged([configmap(namespace, {"a": "1"}, **{SSA: "Ignore"})])
    assert ignored.to_map() == {f"ConfigMap/{namespace}/settings": "skipped"}
    with pytest.raises(NotFound):
        await kube.get("v1", "ConfigMap", "settings", namespace)

    # Marked in the cluster (e.g. with kubectl annotate): left alone too.
    await manager.apply_all_staged([configmap(namespace, {"a": "1"})])
    await kube.patch(
        "v1",
        "ConfigMap",
        "settings",
        {"metadata": {"annotations": {SSA: "Ignore"}}, "data": {"a": "hand"}},
        namespace,
        field_manager="someone",
    )
    result = await manager.apply_all_staged([configmap(namespace, {"a": "1"})])
    assert result.to_map() == {f"ConfigMap/{namespace}/settings": "skipped"}
    assert (await kube.get("v1", "ConfigMap", "settings", namespace))["data"] == {"a": "hand"}


async def test_reconcile_disabled_skips(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    await manager.apply_all_staged([configmap(namespace, {"a": "1"})])
    disabled = configmap(
        namespace, {"a": "2"}, **{"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}
    )
    result = await manager.apply_all_staged([disabled])
    assert result.to_map() == {f"ConfigMap/{namespace}/settings": "skipped"}
    assert (await kube.get("v1", "ConfigMap", "settings", namespace))["data"] == {"a": "1"}

    # Also as a label, and in any letter case.
    labelled = configmap(namespace, {"a": "3"})
    labelled["metadata"]["labels"] = {"kustomize.toolkit.fluxcd.io/reconcile": "Disabled"}
    result = await manager.apply_all_staged([labelled])
    assert result.to_map() == {f"ConfigMap/{namespace}/settings": "skipped"}

"""Pruning: only objects that still carry the owner labels, never anything else."""

from __future__ import annotations

from typing import Any

import pytest

from tidegate.apply import (
    Action,
    Inventory,
    InventoryEntry,
    PruneFailed,
    ResourceManager,
    WaitFailed,
)
from tidegate.kube import Client, Impersonation, NotFound

from .support import manager_for, manifests, suffix

pytestmark = pytest.mark.cluster


def configmap(namespace: str, name: str, **annotations: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
    }


async def test_prune_deletes_only_owned_objects(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    applied = await manager.apply_all_staged(
        [
            *manifests("app.yaml", namespace=namespace),
            configmap(namespace, "kept", **{"kustomize.toolkit.fluxcd.io/prune": "Disabled"}),
        ]
    )
    # Not applied by this Kustomization: no owner labels.
    await kube.create(configmap(namespace, "foreign"))
    # Applied by another Kustomization: other owner labels.
    await manager_for(kube, name="other").apply_all_staged([configmap(namespace, "theirs")])

    old = applied.inventory()
    old.merge(
        [
            InventoryEntry(f"{namespace}_foreign__ConfigMap", "v1"),
            InventoryEntry(f"{namespace}_theirs__ConfigMap", "v1"),
            InventoryEntry(f"{namespace}_gone__ConfigMap", "v1"),
        ]
    )
    new = Inventory.from_status(
        {"entries": [{"id": f"{namespace}_web__ServiceAccount", "v": "v1"}]}
    )
    result = await manager.delete_all(old.diff(new))
    assert result.to_map() == {
        f"Deployment/{namespace}/web": "deleted",
        f"ConfigMap/{namespace}/theirs": "skipped",
        f"ConfigMap/{namespace}/settings": "deleted",
        f"ConfigMap/{namespace}/kept": "skipped",
        f"ConfigMap/{namespace}/gone": "deleted",  # already absent: Flux counts it deleted
        f"ConfigMap/{namespace}/foreign": "skipped",
    }
    for name in ("kept", "foreign", "theirs"):
        await kube.get("v1", "ConfigMap", name, namespace)
    for api, kind, name in [("v1", "ConfigMap", "settings"), ("apps/v1", "Deployment", "web")]:
        with pytest.raises(NotFound):
            await kube.get(api, kind, name, namespace)
    await kube.get("v1", "ServiceAccount", "web", namespace)
    deleted = [e for e in old.diff(new) if result.to_map()[e.metadata.subject] == "deleted"]
    await manager.wait_for_deletion(deleted, wait_timeout=5)
    with pytest.raises(WaitFailed, match=rf"ConfigMap/{namespace}/kept status: 'Current'"):
        await manager.wait_for_deletion(
            [InventoryEntry(f"{namespace}_kept__ConfigMap", "v1")], wait_timeout=0.1
        )


async def test_namespaces_and_crds_go_last(kube: Client) -> None:
    sfx = suffix()
    namespace = f"prune-{sfx}"
    crd_name = f"widgets.widgets.{sfx}.tidegate.test"
    manager = manager_for(kube)
    applied = await manager.apply_all_staged(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
            *manifests("crd.yaml", namespace=namespace, suffix=sfx),
            configmap(namespace, "settings"),
        ]
    )
    result = await manager.delete_all(applied.inventory())
    assert list(result.to_map().items()) == [
        (f"Widget/{namespace}/sprocket", "deleted"),
        (f"ConfigMap/{namespace}/settings", "deleted"),
        (f"Namespace/{namespace}", "deleted"),
        (f"CustomResourceDefinition/{crd_name}", "deleted"),
    ]
    # No namespace controller runs here: the Namespace stays Terminating.
    ns = await kube.get("v1", "Namespace", namespace)
    assert ns["metadata"].get("deletionTimestamp")
    await manager.wait_for_deletion(
        [e for e in applied.inventory() if e.metadata.kind == "CustomResourceDefinition"],
        wait_timeout=30,
    )


async def test_prune_needs_owner_labels(kube: Client, namespace: str) -> None:
    with pytest.raises(ValueError, match="owner labels"):
        await ResourceManager(kube).delete_all([configmap(namespace, "x")])


async def test_prune_failures_are_collected(kube: Client, namespace: str) -> None:
    await manager_for(kube).apply_all_staged([configmap(namespace, "a"), configmap(namespace, "b")])
    denied = ResourceManager(
        kube,
        owner_labels=manager_for(kube).owner_labels,
        impersonate=Impersonation.service_account(namespace, "nobody"),
    )
    with pytest.raises(PruneFailed) as caught:
        await denied.delete_all([configmap(namespace, "a"), configmap(namespace, "b")])
    assert [f.subject for f in caught.value.failures] == [
        f"ConfigMap/{namespace}/b",
        f"ConfigMap/{namespace}/a",
    ]
    assert str(caught.value).startswith(
        f"delete failed, errors: ConfigMap/{namespace}/b query failed: "
    )
    assert {e.action for e in caught.value.changeset} == {Action.UNKNOWN}

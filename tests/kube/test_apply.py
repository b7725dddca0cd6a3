"""Server-side apply, dry-run, status patch, delete and typed errors against the real API server."""

from __future__ import annotations

import pytest

from tidegate.kube import Client, Conflict, Invalid, KubeError, NotFound

pytestmark = pytest.mark.cluster


def configmap(namespace: str, data: dict[str, str], name: str = "settings") -> dict[str, object]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": name, "namespace": namespace},
        "data": data,
    }


def managers(obj: dict[str, object]) -> dict[str, dict[str, object]]:
    meta = obj["metadata"]
    assert isinstance(meta, dict)
    return {entry["manager"]: entry for entry in meta["managedFields"]}


async def test_apply_creates_then_updates_with_field_manager(kube: Client, namespace: str) -> None:
    created = await kube.apply(configmap(namespace, {"a": "1"}), field_manager="tidegate-test")
    assert created["data"] == {"a": "1"}
    entry = managers(created)["tidegate-test"]
    assert entry["operation"] == "Apply"
    assert "f:a" in entry["fieldsV1"]["f:data"]

    updated = await kube.apply(
        configmap(namespace, {"a": "2", "b": "3"}), field_manager="tidegate-test"
    )
    assert updated["data"] == {"a": "2", "b": "3"}
    assert updated["metadata"]["uid"] == created["metadata"]["uid"]
    assert int(updated["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    assert set(managers(updated)["tidegate-test"]["fieldsV1"]["f:data"]) == {"f:a", "f:b"}

    # A field dropped from the applied config is removed: the manager owned it alone.
    pruned = await kube.apply(configmap(namespace, {"b": "3"}), field_manager="tidegate-test")
    assert pruned["data"] == {"b": "3"}
    stored = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert stored["data"] == {"b": "3"}


async def test_apply_conflict_needs_force(kube: Client, namespace: str) -> None:
    await kube.apply(configmap(namespace, {"a": "1"}), field_manager="flux")
    with pytest.raises(Conflict) as caught:
        await kube.apply(configmap(namespace, {"a": "2"}), field_manager="tidegate")
    assert caught.value.status == 409
    assert caught.value.reason == "Conflict"
    assert "flux" in caught.value.message

    taken = await kube.apply(configmap(namespace, {"a": "2"}), field_manager="tidegate", force=True)
    assert taken["data"] == {"a": "2"}
    assert "f:a" in managers(taken)["tidegate"]["fieldsV1"]["f:data"]


async def test_dry_run_changes_nothing(kube: Client, namespace: str) -> None:
    preview = await kube.apply(
        configmap(namespace, {"a": "1"}, name="ghost"), field_manager="t", dry_run=True
    )
    assert preview["data"] == {"a": "1"}
    with pytest.raises(NotFound):
        await kube.get("v1", "ConfigMap", "ghost", namespace)

    real = await kube.apply(configmap(namespace, {"a": "1"}), field_manager="t")
    preview = await kube.apply(
        configmap(namespace, {"a": "changed"}), field_manager="t", dry_run=True
    )
    assert preview["data"] == {"a": "changed"}
    stored = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert stored["data"] == {"a": "1"}
    assert stored["metadata"]["resourceVersion"] == real["metadata"]["resourceVersion"]

    await kube.delete("v1", "ConfigMap", "settings", namespace, dry_run=True)
    assert (await kube.get("v1", "ConfigMap", "settings", namespace))["data"] == {"a": "1"}


async def test_create_conflicts_and_validation_are_typed(kube: Client, namespace: str) -> None:
    await kube.create(configmap(namespace, {"a": "1"}))
    with pytest.raises(Conflict) as exists:
        await kube.create(configmap(namespace, {"a": "1"}))
    assert exists.value.reason == "AlreadyExists"
    assert exists.value.details["name"] == "settings"

    with pytest.raises(Invalid) as invalid:
        await kube.create(configmap(namespace, {"bad key!": "x"}, name="other"))
    assert invalid.value.status == 422
    assert invalid.value.reason == "Invalid"
    assert "bad key!" in invalid.value.message

    with pytest.raises(NotFound) as missing:
        await kube.get("v1", "ConfigMap", "nope", namespace)
    assert (missing.value.status, missing.value.reason) == (404, "NotFound")
    assert 'configmaps "nope" not found' in missing.value.message

    with pytest.raises(KubeError, match="namespaced: a namespace is required"):
        await kube.get("v1", "ConfigMap", "settings")


async def test_status_patch_touches_only_status(kube: Client, namespace: str) -> None:
    quota = {
        "apiVersion": "v1",
        "kind": "ResourceQuota",
        "metadata": {"name": "q", "namespace": namespace},
        "spec": {"hard": {"pods": "5"}},
    }
    created = await kube.create(quota)
    patched = await kube.patch_status(created, {"hard": {"pods": "5"}, "used": {"pods": "2"}})
    assert patched["status"]["used"] == {"pods": "2"}
    assert patched["spec"] == {"hard": {"pods": "5"}}
    # The main resource ignores status, the status subresource ignores spec.
    await kube.patch(
        "v1",
        "ResourceQuota",
        "q",
        {"spec": {"hard": {"pods": "9"}}, "status": {"used": {"pods": "0"}}},
        namespace,
    )
    stored = await kube.get("v1", "ResourceQuota", "q", namespace)
    assert stored["spec"]["hard"] == {"pods": "9"}
    assert stored["status"]["used"] == {"pods": "2"}


async def test_delete_with_propagation_policy(kube: Client, namespace: str) -> None:
    await kube.create(configmap(namespace, {"a": "1"}))
    deleted = await kube.delete("v1", "ConfigMap", "settings", namespace)
    assert (deleted["kind"], deleted["status"]) == ("Status", "Success")
    assert deleted["details"]["name"] == "settings"
    with pytest.raises(NotFound):
        await kube.get("v1", "ConfigMap", "settings", namespace)
    with pytest.raises(NotFound):
        await kube.delete("v1", "ConfigMap", "settings", namespace)

    # Orphan and Foreground hand the object to the garbage collector through a finalizer
    # (no controller-manager runs here, so it stays visible, marked for deletion).
    await kube.create(configmap(namespace, {"a": "1"}, name="orphaned"))
    await kube.delete("v1", "ConfigMap", "orphaned", namespace, propagation_policy="Orphan")
    pending = await kube.get("v1", "ConfigMap", "orphaned", namespace)
    assert pending["metadata"]["finalizers"] == ["orphan"]
    assert pending["metadata"]["deletionTimestamp"]

    await kube.create(configmap(namespace, {"a": "1"}, name="foreground"))
    await kube.delete("v1", "ConfigMap", "foreground", namespace, propagation_policy="Foreground")
    pending = await kube.get("v1", "ConfigMap", "foreground", namespace)
    assert pending["metadata"]["finalizers"] == ["foregroundDeletion"]


async def test_list_pages_through_continue_tokens(kube: Client, namespace: str) -> None:
    for i in range(7):
        await kube.create(configmap(namespace, {"i": str(i)}, name=f"cm-{i}"))
    listed = await kube.list("v1", "ConfigMap", namespace, page_size=3, label_selector=None)
    names = sorted(
        item["metadata"]["name"]
        for item in listed["items"]
        if item["metadata"]["name"].startswith("cm-")
    )
    assert names == [f"cm-{i}" for i in range(7)]
    assert all(
        item["kind"] == "ConfigMap" and item["apiVersion"] == "v1" for item in listed["items"]
    )
    assert listed["metadata"]["resourceVersion"]

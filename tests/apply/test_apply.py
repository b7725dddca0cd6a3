"""Staged server-side apply against the real API server: actions, drift, stages, errors."""

from __future__ import annotations

import pytest

from tidegate.apply import Action, ApplyFailed, ResourceManager, WaitFailed, owner_labels_for
from tidegate.kube import Client, Impersonation, NotFound

from .support import manager_for, manifests, pick, suffix

pytestmark = pytest.mark.cluster


async def test_created_then_unchanged_then_configured(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    objects = manifests("app.yaml", namespace=namespace)

    first = await manager.apply_all_staged(objects)
    assert first.to_map() == {
        f"ServiceAccount/{namespace}/web": "created",
        f"ConfigMap/{namespace}/settings": "created",
        f"Deployment/{namespace}/web": "created",
    }
    live = await kube.get("apps/v1", "Deployment", "web", namespace)
    assert live["metadata"]["labels"] == {
        "app": "web",
        "kustomize.toolkit.fluxcd.io/name": "app",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    assert {e["manager"] for e in live["metadata"]["managedFields"]} == {"kustomize-controller"}
    versions = {
        kind: (await kube.get(api, kind, name, namespace))["metadata"]["resourceVersion"]
        for api, kind, name in [("v1", "ConfigMap", "settings"), ("apps/v1", "Deployment", "web")]
    }

    # Nothing changed: nothing is written, resource versions stay.
    again = await manager.apply_all_staged(manifests("app.yaml", namespace=namespace))
    assert set(again.to_map().values()) == {"unchanged"}
    assert not again.changed()
    for api, kind, name in [("v1", "ConfigMap", "settings"), ("apps/v1", "Deployment", "web")]:
        current = await kube.get(api, kind, name, namespace)
        assert current["metadata"]["resourceVersion"] == versions[kind]

    # A changed manifest is applied; a field removed from it is removed from the object.
    changed = manifests("app.yaml", namespace=namespace)
    pick(changed, "ConfigMap")["data"] = {"colour": "red"}
    result = await manager.apply_all_staged(changed)
    assert result.to_map()[f"ConfigMap/{namespace}/settings"] == "configured"
    assert str(result.changed()) == f"ConfigMap/{namespace}/settings configured"
    stored = await kube.get("v1", "ConfigMap", "settings", namespace)
    assert stored["data"] == {"colour": "red"}


async def test_inventory_is_in_flux_format(kube: Client, namespace: str) -> None:
    changeset = await manager_for(kube).apply_all_staged(manifests("app.yaml", namespace=namespace))
    assert changeset.inventory().to_status() == {
        "entries": [
            {"id": f"{namespace}_web__ServiceAccount", "v": "v1"},
            {"id": f"{namespace}_settings__ConfigMap", "v": "v1"},
            {"id": f"{namespace}_web_apps_Deployment", "v": "v1"},
        ]
    }


async def test_drift_is_reverted(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    await manager.apply_all_staged(manifests("app.yaml", namespace=namespace))

    # Someone changes managed fields by hand (another manager: no take-over involved).
    await kube.patch(
        "v1",
        "ConfigMap",
        "settings",
        {"data": {"colour": "pink"}},
        namespace,
        field_manager="someone",
    )
    await kube.patch(
        "apps/v1",
        "Deployment",
        "web",
        {"spec": {"replicas": 3}},
        namespace,
        field_manager="someone",
    )
    result = await manager.apply_all_staged(manifests("app.yaml", namespace=namespace))
    assert result.to_map() == {
        f"ServiceAccount/{namespace}/web": "unchanged",
        f"ConfigMap/{namespace}/settings": "configured",
        f"Deployment/{namespace}/web": "configured",
    }
    assert (await kube.get("v1", "ConfigMap", "settings", namespace))["data"]["colour"] == "blue"
    assert (await kube.get("apps/v1", "Deployment", "web", namespace))["spec"]["replicas"] == 0

    # Fields nobody declared (added by others) are not drift.
    await kube.patch(
        "v1", "ConfigMap", "settings", {"data": {"extra": "1"}}, namespace, field_manager="someone"
    )
    result = await manager.apply_all_staged(manifests("app.yaml", namespace=namespace))
    assert set(result.to_map().values()) == {"unchanged"}


async def test_crd_and_custom_resource_in_one_call(kube: Client, namespace: str) -> None:
    sfx = suffix()
    crd_name = f"widgets.widgets.{sfx}.tidegate.test"
    manager = manager_for(kube)
    try:
        result = await manager.apply_all_staged(
            manifests("crd.yaml", namespace=namespace, suffix=sfx), wait_timeout=30
        )
        assert list(result.to_map().items()) == [
            (f"CustomResourceDefinition/{crd_name}", "created"),
            (f"Widget/{namespace}/sprocket", "created"),
        ]
        widget = await kube.get(f"widgets.{sfx}.tidegate.test/v1", "Widget", "sprocket", namespace)
        assert widget["spec"] == {"size": 3}
        assert [e.to_dict() for e in result.inventory()] == [
            {"id": f"_{crd_name}_apiextensions.k8s.io_CustomResourceDefinition", "v": "v1"},
            {"id": f"{namespace}_sprocket_widgets.{sfx}.tidegate.test_Widget", "v": "v1"},
        ]
        again = await manager.apply_all_staged(
            manifests("crd.yaml", namespace=namespace, suffix=sfx)
        )
        assert set(again.to_map().values()) == {"unchanged"}
    finally:
        await kube.delete("apiextensions.k8s.io/v1", "CustomResourceDefinition", crd_name)


async def test_stages_namespace_cluster_roles_and_classes_first(kube: Client) -> None:
    sfx = suffix()
    namespace = f"staged-{sfx}"
    manager = manager_for(kube)
    try:
        result = await manager.apply_all_staged(
            manifests("cluster.yaml", namespace=namespace, suffix=sfx)
        )
        # Stage one (Namespace, ClusterRole), stage two (IngressClass), then the rest.
        assert list(result.to_map().items()) == [
            (f"Namespace/{namespace}", "created"),
            (f"ClusterRole/tidegate-test:{sfx}", "created"),
            (f"IngressClass/tidegate-test-{sfx}", "created"),
            (f"ClusterRoleBinding/tidegate-test:{sfx}", "created"),
            (f"ConfigMap/{namespace}/settings", "created"),
        ]
        entries = [e.to_dict()["id"] for e in result.inventory()]
        assert entries[1] == f"_tidegate-test__{sfx}_rbac.authorization.k8s.io_ClusterRole"
        assert (await kube.get("v1", "ConfigMap", "settings", namespace))["data"] == {
            "colour": "green"
        }
    finally:
        for api, kind, name in [
            ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", f"tidegate-test:{sfx}"),
            ("rbac.authorization.k8s.io/v1", "ClusterRole", f"tidegate-test:{sfx}"),
            ("networking.k8s.io/v1", "IngressClass", f"tidegate-test-{sfx}"),
        ]:
            await kube.delete(api, kind, name)


async def test_errors_name_every_failing_object_and_nothing_is_applied(
    kube: Client, namespace: str
) -> None:
    with pytest.raises(ApplyFailed) as caught:
        await manager_for(kube).apply_all_staged(manifests("invalid.yaml", namespace=namespace))
    failures = {f.subject: f.message for f in caught.value.failures}
    assert set(failures) == {f"ConfigMap/{namespace}/bad-key", f"Service/{namespace}/bad-port"}
    assert failures[f"ConfigMap/{namespace}/bad-key"].startswith(
        f"ConfigMap/{namespace}/bad-key dry-run failed (Invalid): "
    )
    assert "not a key!" in failures[f"ConfigMap/{namespace}/bad-key"]
    assert failures[f"Service/{namespace}/bad-port"].startswith(
        f"Service/{namespace}/bad-port dry-run failed (Invalid): "
    )
    message = str(caught.value)
    assert message.splitlines()[0].startswith(f"ConfigMap/{namespace}/bad-key dry-run failed")
    assert message.splitlines()[1].startswith(f"Service/{namespace}/bad-port dry-run failed")
    with pytest.raises(NotFound):
        await kube.get("v1", "ConfigMap", "fine", namespace)


async def test_missing_namespace_and_unknown_kind(kube: Client) -> None:
    sfx = suffix()
    objects = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": f"no-{sfx}"},
        },
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "b"}},
        {"apiVersion": f"{sfx}.example.com/v1", "kind": "Gadget", "metadata": {"name": "c"}},
    ]
    with pytest.raises(ApplyFailed) as caught:
        await manager_for(kube).apply_all_staged(objects)
    messages = sorted(f.message for f in caught.value.failures)
    assert messages[0].startswith("ConfigMap/b namespace not specified")
    assert messages[1].startswith(
        f'ConfigMap/no-{sfx}/a not found: namespaces "no-{sfx}" not found'
    )
    assert messages[2] == (
        f"Gadget/c dry-run failed: no matches for kind 'Gadget' in version '{sfx}.example.com/v1'"
    )


async def test_stage_failure_keeps_earlier_stages_in_changeset(kube: Client) -> None:
    sfx = suffix()
    namespace = f"partial-{sfx}"
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "bad", "namespace": namespace},
            "data": {"no good": "x"},
        },
    ]
    with pytest.raises(ApplyFailed) as caught:
        await manager_for(kube).apply_all_staged(objects)
    assert caught.value.changeset.to_map() == {f"Namespace/{namespace}": "created"}
    assert [f.subject for f in caught.value.failures] == [f"ConfigMap/{namespace}/bad"]


async def test_impersonated_manager_is_refused_without_rbac(kube: Client, namespace: str) -> None:
    manager = ResourceManager(
        kube,
        owner_labels=owner_labels_for("app", namespace),
        impersonate=Impersonation.service_account(namespace, "nobody"),
    )
    with pytest.raises(ApplyFailed) as caught:
        await manager.apply_all_staged(manifests("app.yaml", namespace=namespace))
    assert len(caught.value.failures) == 3
    for failure in caught.value.failures:
        assert "dry-run failed (Forbidden)" in failure.message
        assert "system:serviceaccount:" in failure.message


async def test_cluster_scoped_objects_lose_a_stray_namespace(kube: Client, namespace: str) -> None:
    sfx = suffix()
    role = {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "ClusterRole",
        "metadata": {"name": f"stray-{sfx}", "namespace": namespace},
        "rules": [],
    }
    try:
        result = await manager_for(kube).apply_all_staged([role])
        assert result.to_map() == {f"ClusterRole/stray-{sfx}": "created"}
        assert result.entries[0].action is Action.CREATED
    finally:
        await kube.delete("rbac.authorization.k8s.io/v1", "ClusterRole", f"stray-{sfx}")


async def test_secret_string_data_and_default_protocols_do_not_drift(
    kube: Client, namespace: str
) -> None:
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "token", "namespace": namespace},
        "stringData": {"token": "s3cr3t"},
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": namespace},
        "spec": {"selector": {"app": "web"}, "ports": [{"name": "http", "port": 80}]},
        "status": {"loadBalancer": {}},
    }
    manager = manager_for(kube)
    first = await manager.apply_all_staged([secret, service])
    assert set(first.to_map().values()) == {"created"}
    assert (await kube.get("v1", "Secret", "token", namespace))["data"] == {"token": "czNjcjN0"}
    again = await manager.apply_all_staged([secret, service])
    assert set(again.to_map().values()) == {"unchanged"}

    secret["stringData"] = {"other": "x"}
    result = await manager.apply_all_staged([secret, service])
    assert result.to_map()[f"Secret/{namespace}/token"] == "configured"
    assert (await kube.get("v1", "Secret", "token", namespace))["data"] == {"other": "eA=="}


async def test_stage_one_wait_times_out_on_a_terminating_namespace(kube: Client) -> None:
    namespace = f"doomed-{suffix()}"
    await kube.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    await kube.delete("v1", "Namespace", namespace)  # stays Terminating: no namespace controller
    objects = [
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}},
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": namespace},
        },
    ]
    with pytest.raises(WaitFailed) as caught:
        await manager_for(kube).apply_all_staged(objects, wait_timeout=1)
    assert (
        str(caught.value) == f"timeout waiting for: [Namespace/{namespace} status: 'Terminating']"
    )
    assert [f.subject for f in caught.value.failures] == [f"Namespace/{namespace}"]
    assert list(caught.value.changeset.to_map()) == [f"Namespace/{namespace}"]

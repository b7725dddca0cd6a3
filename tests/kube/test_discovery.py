"""Discovery and REST mapping: built-in kinds, unknown kinds, CRDs created at run time."""

from __future__ import annotations

import asyncio

import pytest

from tidegate.kube import Client, NoKindMatch

pytestmark = pytest.mark.cluster


async def test_maps_core_and_group_kinds(kube: Client) -> None:
    cm = await kube.resource("v1", "ConfigMap")
    assert (cm.plural, cm.namespaced, cm.path("ns", "x")) == (
        "configmaps",
        True,
        "/api/v1/namespaces/ns/configmaps/x",
    )
    deploy = await kube.resource("apps/v1", "Deployment")
    assert {"status", "scale"} <= deploy.subresources
    role = await kube.resource("rbac.authorization.k8s.io/v1", "ClusterRole")
    assert role.namespaced is False
    assert role.path("ignored", "admin") == "/apis/rbac.authorization.k8s.io/v1/clusterroles/admin"


async def test_unknown_kinds_raise_no_kind_match(kube: Client) -> None:
    with pytest.raises(NoKindMatch, match=r"no matches for kind 'Gizmo' in version 'v1'"):
        await kube.resource("v1", "Gizmo")
    with pytest.raises(NoKindMatch, match=r"in version 'nothing\.example\.com/v1'"):
        await kube.get("nothing.example.com/v1", "Widget", "w", "default")


async def test_crd_created_at_run_time_becomes_usable(kube: Client, namespace: str) -> None:
    group = f"{namespace}.example.com"  # new in every run, also against a kept environment
    # The client has read discovery for this group before the CRD exists ...
    with pytest.raises(NoKindMatch):
        await kube.resource(f"{group}/v1", "Widget")

    await kube.create(
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": f"widgets.{group}"},
            "spec": {
                "group": group,
                "names": {
                    "kind": "Widget",
                    "plural": "widgets",
                    "singular": "widget",
                    "listKind": "WidgetList",
                },
                "scope": "Namespaced",
                "versions": [
                    {
                        "name": "v1",
                        "served": True,
                        "storage": True,
                        "subresources": {"status": {}},
                        "schema": {
                            "openAPIV3Schema": {
                                "type": "object",
                                "properties": {
                                    "spec": {
                                        "type": "object",
                                        "properties": {"size": {"type": "integer"}},
                                    },
                                    "status": {
                                        "type": "object",
                                        "x-kubernetes-preserve-unknown-fields": True,
                                    },
                                },
                            }
                        },
                    }
                ],
            },
        }
    )
    await _until_established(kube, f"widgets.{group}")

    # ... and the same client, not restarted, now creates and reads Widgets.
    widget = {
        "apiVersion": f"{group}/v1",
        "kind": "Widget",
        "metadata": {"name": "w1", "namespace": namespace},
        "spec": {"size": 3},
    }
    applied = await kube.apply(widget, field_manager="t")
    assert applied["spec"] == {"size": 3}
    listed = await kube.list(f"{group}/v1", "Widget", namespace)
    assert [item["metadata"]["name"] for item in listed["items"]] == ["w1"]
    status = await kube.patch_status(applied, {"ready": True})
    assert status["status"] == {"ready": True}
    assert "status" in (await kube.resource(f"{group}/v1", "Widget")).subresources


async def _until_established(kube: Client, name: str) -> None:
    for _ in range(100):
        crd = await kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", name)
        conditions = {
            c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []
        }
        if conditions.get("Established") == "True":
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"CRD {name} not established")

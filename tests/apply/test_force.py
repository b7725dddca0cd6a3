"""Recreating objects on immutable-field changes: `force=True` and `force: Enabled`."""

from __future__ import annotations

import pytest

from tidegate.apply import ApplyFailed
from tidegate.kube import Client

from .support import manager_for, manifests, pick

pytestmark = pytest.mark.cluster


async def test_immutable_configmap_needs_force(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    first = manifests("immutable.yaml", namespace=namespace, version="1")
    await manager.apply_all_staged([pick(first, "ConfigMap")])
    before = await kube.get("v1", "ConfigMap", "frozen", namespace)

    changed = [pick(manifests("immutable.yaml", namespace=namespace, version="2"), "ConfigMap")]
    with pytest.raises(ApplyFailed) as caught:
        await manager.apply_all_staged(changed)
    (failure,) = caught.value.failures
    assert failure.message.startswith(f"ConfigMap/{namespace}/frozen dry-run failed (Invalid): ")
    assert "field is immutable" in failure.message
    assert (await kube.get("v1", "ConfigMap", "frozen", namespace))["data"] == {"version": "1"}

    result = await manager.apply_all_staged(changed, force=True)
    # Recreated objects are reported as created, as in Flux.
    assert result.to_map() == {f"ConfigMap/{namespace}/frozen": "created"}
    after = await kube.get("v1", "ConfigMap", "frozen", namespace)
    assert after["data"] == {"version": "2"}
    assert after["metadata"]["uid"] != before["metadata"]["uid"]


async def test_force_annotation_recreates_a_job(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    await manager.apply_all_staged(
        [pick(manifests("immutable.yaml", namespace=namespace, version="1"), "Job")]
    )
    before = await kube.get("batch/v1", "Job", "migrate", namespace)

    result = await manager.apply_all_staged(
        [pick(manifests("immutable.yaml", namespace=namespace, version="2"), "Job")]
    )
    assert result.to_map() == {f"Job/{namespace}/migrate": "created"}
    after = await kube.get("batch/v1", "Job", "migrate", namespace)
    assert after["spec"]["template"]["spec"]["containers"][0]["image"] == "busybox:2"
    assert after["metadata"]["uid"] != before["metadata"]["uid"]


async def test_force_never_deletes_for_an_invalid_manifest(kube: Client, namespace: str) -> None:
    manager = manager_for(kube)
    cm = pick(manifests("immutable.yaml", namespace=namespace, version="1"), "ConfigMap")
    await manager.apply_all_staged([cm])
    before = await kube.get("v1", "ConfigMap", "frozen", namespace)

    cm["data"] = {"not a key!": "x"}
    with pytest.raises(ApplyFailed) as caught:
        await manager.apply_all_staged([cm], force=True)
    assert "dry-run failed (Invalid)" in str(caught.value)
    after = await kube.get("v1", "ConfigMap", "frozen", namespace)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]

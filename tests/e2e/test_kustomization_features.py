"""Kustomization features end to end, through the controller process: dependsOn ordering,
the ssa/reconcile/prune annotations, force recreate, health waits (kstatus and CEL),
impersonation, deletionPolicy Orphan and the reconciliation history."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tidegate import kube
from tidegate.oci import Registry

from .support import OCIREPOSITORY, RunningController, condition, wait_for
from .test_kustomization import (
    KUSTOMIZATION,
    app,
    applied,
    configmap,
    configmaps,
    failing_with,
    publish,
    source,
)

pytestmark = [pytest.mark.cluster, pytest.mark.registry]

REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"
SSA = "kustomize.toolkit.fluxcd.io/ssa"


def annotated(name: str, annotations: dict[str, str], **data: str) -> str:
    notes = "".join(f"    {key}: {value}\n" for key, value in annotations.items())
    lines = "".join(f"  {key}: {value!r}\n" for key, value in data.items())
    return (
        f"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {name}\n  annotations:\n{notes}"
        f"data:\n{lines}"
    )


async def kustomization(
    kube_client: kube.Client, controller: RunningController, namespace: str, name: str,
    **spec: Any,
) -> None:  # fmt: skip
    await kube_client.create({
        "apiVersion": KUSTOMIZATION[0], "kind": KUSTOMIZATION[1],
        "metadata": {"name": name, "namespace": namespace, "labels": controller.labels},
        "spec": {"interval": "10m", "path": "./", "prune": True, "targetNamespace": namespace,
                 "sourceRef": {"kind": "OCIRepository", "name": "app"}, **spec},
    })  # fmt: skip


def reader(kube_client: kube.Client, namespace: str, name: str) -> Any:
    return lambda: kube_client.get(*KUSTOMIZATION, name, namespace)


async def request(kube_client: kube.Client, namespace: str, name: str, value: str) -> None:
    await kube_client.patch(*KUSTOMIZATION, name,
                            {"metadata": {"annotations": {REQUESTED_AT: value}}},
                            namespace)  # fmt: skip


async def test_depends_on_waits_until_the_dependency_is_ready(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/deps"
    revision = await publish(client, registry, repo, "v1", app(tmp_path / "app", {
        "a/a.yaml": configmap("from-a", color="blue"),
        "b/b.yaml": configmap("from-b", color="green"),
    }))  # fmt: skip
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")
    await kustomization(kube, controller, namespace, "b", path="./b", dependsOn=[{"name": "a"}])

    obj = await wait_for(
        reader(kube, namespace, "b"), failing_with("DependencyNotReady"), within=120,
        what="DependencyNotReady",
    )  # fmt: skip
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert message.startswith(f"dependency '{namespace}/a' not found")
    assert "lastAttemptedRevision" not in obj["status"]
    assert await configmaps(kube, namespace) == {}

    await kustomization(kube, controller, namespace, "a", path="./a")
    await wait_for(reader(kube, namespace, "a"), applied(revision), within=120, what="a ready")
    # B is retried after --requeue-dependency (2s), without backoff growing.
    obj = await wait_for(reader(kube, namespace, "b"), applied(revision), within=60, what="b ready")
    assert sorted(await configmaps(kube, namespace)) == ["from-a", "from-b"]
    assert "All dependencies are ready" in controller.logs()


async def test_annotations_history_and_prune_disabled(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/notes"
    # Objects made by hand before the Kustomization: kubectl owns their fields.
    for name in ("override", "merge", "present", "disabled"):
        await kube.create({"apiVersion": "v1", "kind": "ConfigMap",
                           "metadata": {"name": name, "namespace": namespace},
                           "data": {"color": "red", "extra": "by-hand"}},
                          field_manager="kubectl")  # fmt: skip
    v1 = await publish(client, registry, repo, "v1", app(tmp_path / "v1", {
        "kustomization.yaml": "resources: [all.yaml]\n",
        "all.yaml": "---\n".join([
            annotated("override", {SSA: "Override"}, color="blue"),
            annotated("merge", {SSA: "Merge"}, color="blue"),
            annotated("present", {SSA: "IfNotPresent"}, color="blue"),
            annotated("absent", {SSA: "IfNotPresent"}, color="blue"),
            annotated("ignored", {SSA: "Ignore"}, color="blue"),
            annotated("disabled", {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"},
                      color="blue"),
            annotated("kept", {"kustomize.toolkit.fluxcd.io/prune": "disabled"}, color="blue"),
            configmap("plain", color="blue"),
        ]),
    }))  # fmt: skip
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")
    await kustomization(kube, controller, namespace, "notes")

    obj = await wait_for(reader(kube, namespace, "notes"), applied(v1), within=120, what="v1")
    live = await configmaps(kube, namespace)
    assert live["override"]["data"] == {"color": "blue"}  # kubectl's field removed
    assert live["merge"]["data"] == {"color": "blue", "extra": "by-hand"}  # kept
    assert live["present"]["data"] == {"color": "red", "extra": "by-hand"}  # untouched
    assert live["absent"]["data"] == {"color": "blue"}  # created once
    assert "ignored" not in live
    assert live["disabled"]["data"] == {"color": "red", "extra": "by-hand"}
    ids = {entry["id"] for entry in obj["status"]["inventory"]["entries"]}
    assert f"{namespace}_ignored__ConfigMap" not in ids
    assert f"{namespace}_disabled__ConfigMap" not in ids
    assert f"{namespace}_kept__ConfigMap" in ids

    # History: one snapshot of the v1 manifests, in Flux's format.
    history = obj["status"]["history"]
    assert len(history) == 1
    snapshot = history[0]
    assert snapshot["digest"].startswith("sha256:")
    assert snapshot["lastReconciledStatus"] == "ReconciliationSucceeded"
    assert snapshot["totalReconciliations"] == 1
    assert snapshot["metadata"] == {
        "revision": v1, "originRevision": "v1@sha1:0123456789abcdef",
    }  # fmt: skip
    assert snapshot["lastReconciledDuration"].endswith("s")
    assert {"firstReconciled", "lastReconciled"} <= set(snapshot)

    # A no-change reconcile counts on the same snapshot.
    await request(kube, namespace, "notes", "1")
    obj = await wait_for(
        reader(kube, namespace, "notes"),
        lambda o: o["status"].get("lastHandledReconcileAt") == "1"
        and o["status"]["history"][0]["totalReconciliations"] == 2,
        within=60, what="second reconcile",
    )  # fmt: skip
    assert len(obj["status"]["history"]) == 1

    # v2 leaves out everything: `kept` stays (prune: disabled), the rest is pruned.
    v2 = await publish(client, registry, repo, "v2", app(tmp_path / "v2", {
        "kustomization.yaml": "resources: [plain.yaml]\n",
        "plain.yaml": configmap("plain", color="green"),
    }))  # fmt: skip
    await kube.patch(*OCIREPOSITORY, "app", {"spec": {"ref": {"tag": "v2"}}}, namespace)
    obj = await wait_for(reader(kube, namespace, "notes"), applied(v2), within=120, what="v2")
    live = await configmaps(kube, namespace)
    assert "kept" in live
    assert "override" not in live
    # IfNotPresent objects that exist are skipped, so they left the inventory (Flux).
    assert "absent" in live
    assert "present" in live
    assert "disabled" in live
    assert [entry["metadata"]["revision"] for entry in obj["status"]["history"]] == [v2, v1]


async def test_force_recreates_an_immutable_configmap(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/force"
    immutable = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: frozen\nimmutable: true\n"
    v1 = await publish(client, registry, repo, "v1", app(tmp_path / "v1", {
        "frozen.yaml": immutable + "data:\n  color: blue\n",
    }))  # fmt: skip
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")
    await kustomization(kube, controller, namespace, "force", force=True)
    await wait_for(reader(kube, namespace, "force"), applied(v1), within=120, what="v1")
    before = await kube.get("v1", "ConfigMap", "frozen", namespace)

    v2 = await publish(client, registry, repo, "v2", app(tmp_path / "v2", {
        "frozen.yaml": immutable + "data:\n  color: green\n",
    }))  # fmt: skip
    await kube.patch(*OCIREPOSITORY, "app", {"spec": {"ref": {"tag": "v2"}}}, namespace)
    await wait_for(reader(kube, namespace, "force"), applied(v2), within=120, what="v2")
    after = await kube.get("v1", "ConfigMap", "frozen", namespace)
    assert after["data"] == {"color": "green"}
    assert after["metadata"]["uid"] != before["metadata"]["uid"]


DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
      - name: web
        image: registry.example/web:1
"""


async def test_wait_follows_a_deployment_status(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/wait"
    revision = await publish(client, registry, repo, "v1", app(tmp_path / "app", {
        "web.yaml": DEPLOYMENT,
    }))  # fmt: skip
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")
    await kustomization(kube, controller, namespace, "wait", wait=True, timeout="90s")

    obj = await wait_for(
        reader(kube, namespace, "wait"),
        lambda o: (condition(o, "Healthy") or {}).get("status") == "Unknown",
        within=120, what="health check running",
    )  # fmt: skip
    assert "lastAppliedRevision" not in obj["status"]
    deployment = await kube.get("apps/v1", "Deployment", "web", namespace)
    await kube.patch_status(deployment, {
        "observedGeneration": deployment["metadata"]["generation"],
        "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1,
        "conditions": [
            {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
             "message": "ok"},
            {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
             "message": "ok"},
        ],
    })  # fmt: skip
    obj = await wait_for(reader(kube, namespace, "wait"), applied(revision), within=60, what="ok")
    healthy = condition(obj, "Healthy")
    assert healthy is not None
    assert healthy["status"] == "True"


async def test_health_check_exprs_judge_a_configmap(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/cel"
    await publish(client, registry, repo, "v1", app(tmp_path / "v1", {
        "probe.yaml": configmap("probe", state="bad"),
    }))  # fmt: skip
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")
    await kustomization(kube, controller, namespace, "cel", wait=True, timeout="20s",
                        healthCheckExprs=[{"apiVersion": "v1", "kind": "ConfigMap",
                                           "current": "data.state == 'ok'",
                                           "failed": "data.state == 'bad'"}])  # fmt: skip
    obj = await wait_for(
        reader(kube, namespace, "cel"), failing_with("HealthCheckFailed"), within=120,
        what="HealthCheckFailed",
    )  # fmt: skip
    assert "ConfigMap/" in condition(obj, "Healthy")["message"]  # type: ignore[index]
    assert obj["status"]["history"][0]["lastReconciledStatus"] == "HealthCheckFailed"

    v2 = await publish(client, registry, repo, "v2", app(tmp_path / "v2", {
        "probe.yaml": configmap("probe", state="ok"),
    }))  # fmt: skip
    await kube.patch(*OCIREPOSITORY, "app", {"spec": {"ref": {"tag": "v2"}}}, namespace)
    obj = await wait_for(reader(kube, namespace, "cel"), applied(v2), within=120, what="ok")
    assert condition(obj, "Healthy")["status"] == "True"  # type: ignore[index]


async def test_impersonation_needs_rbac(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/rbac"
    revision = await publish(client, registry, repo, "v1", app(tmp_path / "app", {
        "a.yaml": configmap("guarded", color="blue"),
    }))  # fmt: skip
    await kube.create({"apiVersion": "v1", "kind": "ServiceAccount",
                       "metadata": {"name": "deployer", "namespace": namespace}})  # fmt: skip
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")
    await kustomization(kube, controller, namespace, "rbac", serviceAccountName="deployer")

    obj = await wait_for(
        reader(kube, namespace, "rbac"), failing_with("ReconciliationFailed"), within=120,
        what="forbidden",
    )  # fmt: skip
    message = condition(obj, "Ready")["message"]  # type: ignore[index]
    assert f"ConfigMap/{namespace}/guarded" in message
    assert "forbidden" in message.lower()
    assert "guarded" not in await configmaps(kube, namespace)

    await kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
                       "metadata": {"name": "deployer", "namespace": namespace},
                       "rules": [{"apiGroups": [""], "resources": ["configmaps"],
                                  "verbs": ["*"]}]})  # fmt: skip
    await kube.create({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
                       "metadata": {"name": "deployer", "namespace": namespace},
                       "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                   "name": "deployer"},
                       "subjects": [{"kind": "ServiceAccount", "name": "deployer",
                                     "namespace": namespace}]})  # fmt: skip
    await request(kube, namespace, "rbac", "rbac")
    await wait_for(reader(kube, namespace, "rbac"), applied(revision), within=120, what="ok")
    live = await configmaps(kube, namespace)
    assert live["guarded"]["data"] == {"color": "blue"}


async def test_deletion_policy_orphan_keeps_the_objects(
    kube: kube.Client, namespace: str, registry: str, client: Registry,
    controller: RunningController, tmp_path: Path,
) -> None:  # fmt: skip
    repo = f"{namespace}/orphan"
    revision = await publish(client, registry, repo, "v1", app(tmp_path / "app", {
        "a.yaml": configmap("orphaned", color="blue"),
    }))  # fmt: skip
    await source(kube, controller, namespace, f"oci://{registry}/{repo}", "v1")
    await kustomization(kube, controller, namespace, "orphan", deletionPolicy="Orphan")
    await wait_for(reader(kube, namespace, "orphan"), applied(revision), within=120, what="ok")

    await kube.delete(*KUSTOMIZATION, "orphan", namespace)
    await wait_for(reader(kube, namespace, "orphan"), lambda o: o == {}, within=60, what="gone")
    assert sorted(await configmaps(kube, namespace)) == ["orphaned"]

"""Health assessment with kstatus's rules, and waiting for objects, on the real API server.

No controller runs beside the API server, so nothing progresses by itself: each test writes the
status a controller would write (`patch_status`) and reads the object back before judging it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import secrets
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from tidegate.api import CustomHealthCheck
from tidegate.apply._cel import CustomHealthChecks, Expression, HealthCheckExprError
from tidegate.apply._health import (
    HealthStatus,
    ObjectRef,
    Status,
    compute_status,
    wait_for,
)
from tidegate.kube import Client, NoKindMatch

Object = dict[str, Any]

IN_PROGRESS, FAILED, CURRENT = HealthStatus.IN_PROGRESS, HealthStatus.FAILED, HealthStatus.CURRENT
LABELS = {"app": "web"}
POD_SPEC = {"containers": [{"name": "app", "image": "example.com/app:1"}]}
TEMPLATE = {"metadata": {"labels": LABELS}, "spec": POD_SPEC}
T0 = "2025-01-01T00:00:00Z"

needs_celpy = pytest.mark.skipif(
    importlib.util.find_spec("celpy") is None,
    reason="healthCheckExprs need the cel-python package (module celpy), which is not installed",
)


def manifest(api_version: str, kind: str, namespace: str | None, name: str, **spec: Any) -> Object:
    meta = {"name": name, **({"namespace": namespace} if namespace else {})}
    obj: Object = {"apiVersion": api_version, "kind": kind, "metadata": meta}
    if spec:
        obj["spec"] = spec
    return obj


def workload(kind: str, namespace: str, name: str = "web", **spec: Any) -> Object:
    extra: dict[str, Any] = {"serviceName": name} if kind == "StatefulSet" else {}
    return manifest(
        "apps/v1",
        kind,
        namespace,
        name,
        selector={"matchLabels": LABELS},
        template=TEMPLATE,
        **extra,
        **spec,
    )


def job(namespace: str, name: str = "migrate", **spec: Any) -> Object:
    template = {"spec": {**POD_SPEC, "restartPolicy": "Never"}}
    return manifest("batch/v1", "Job", namespace, name, template=template, **spec)


def condition(type_: str, status: str, reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": type_, "status": status, "reason": reason or type_, "message": message}


async def live(kube: Client, obj: Object, status: Object | None = None) -> Object:
    """Create the object, write `status` as its controller would, and read it back."""
    created = await kube.create(obj)
    if status:
        await kube.patch_status(created, status)
    meta = created["metadata"]
    return await kube.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))


async def judged(kube: Client, obj: Object, status: Object | None = None) -> Status:
    return compute_status(await live(kube, obj, status))


async def served(kube: Client, api_version: str, kind: str) -> None:
    """Wait until discovery serves a new CRD's kind."""
    for _ in range(100):
        try:
            await kube.resource(api_version, kind)
            return
        except NoKindMatch:
            await asyncio.sleep(0.1)
    raise AssertionError(f"{kind} in {api_version} is not served")


def crd(group: str, plural: str, kind: str) -> Object:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": plural, "kind": kind},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
async def group(kube: Client) -> AsyncIterator[str]:
    """A fresh API group; the CRDs made in it are deleted afterwards."""
    name = f"g{secrets.token_hex(4)}.health.tidegate.test"
    yield name
    listed = await kube.list("apiextensions.k8s.io/v1", "CustomResourceDefinition")
    for item in listed["items"]:
        if item["spec"]["group"] == name:
            await kube.delete(
                "apiextensions.k8s.io/v1", "CustomResourceDefinition", item["metadata"]["name"]
            )


@pytest.fixture
async def widgets(kube: Client, group: str) -> str:
    """The apiVersion of `Widget`, a custom resource that reports conditions as Flux's kinds do."""
    await kube.create(crd(group, "widgets", "Widget"))
    result = await wait_for(kube, [ObjectRef.of(crd(group, "widgets", "Widget"))], timeout=30)
    assert result.ok, result.error
    await served(kube, f"{group}/v1", "Widget")
    return f"{group}/v1"


def widget(api_version: str, namespace: str, name: str = "podinfo") -> Object:
    return manifest(api_version, "Widget", namespace, name, url="oci://example.com/podinfo")


# -- kinds -----------------------------------------------------------------------------------------


DEPLOYMENT_STATES = [
    ({}, IN_PROGRESS, "Replicas: 0/1"),
    ({"replicas": 1}, IN_PROGRESS, "Updated: 0/1"),
    ({"replicas": 2, "updatedReplicas": 1}, IN_PROGRESS, "Pending termination: 1"),
    ({"replicas": 1, "updatedReplicas": 1}, IN_PROGRESS, "Available: 0/1"),
    (
        {"replicas": 1, "updatedReplicas": 1, "readyReplicas": 1, "availableReplicas": 1},
        IN_PROGRESS,
        "ReplicaSet not Available",
    ),
    (
        {
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [condition("Progressing", "True", "NewReplicaSetAvailable")],
        },
        IN_PROGRESS,
        "Deployment not Available",
    ),
    (
        {
            "observedGeneration": 1,
            "replicas": 1,
            "updatedReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [
                condition("Available", "True", "MinimumReplicasAvailable"),
                condition("Progressing", "True", "NewReplicaSetAvailable"),
            ],
        },
        CURRENT,
        "Deployment is available. Replicas: 1",
    ),
    (
        {"conditions": [condition("Progressing", "False", "ProgressDeadlineExceeded")]},
        FAILED,
        "Progress deadline exceeded",
    ),
]


@pytest.mark.cluster
@pytest.mark.parametrize(("status", "expected", "message"), DEPLOYMENT_STATES)
async def test_deployment(
    kube: Client, namespace: str, status: Object, expected: HealthStatus, message: str
) -> None:
    assert await judged(kube, workload("Deployment", namespace), status) == Status(
        expected, message
    )


@pytest.mark.cluster
async def test_deployment_scaled_to_zero_waits_for_its_controller(
    kube: Client, namespace: str
) -> None:
    # The API server defaults progressDeadlineSeconds to 600, so only the controller's
    # Progressing condition makes even an empty Deployment Current.
    assert await judged(kube, workload("Deployment", namespace, replicas=0)) == Status(
        IN_PROGRESS, "ReplicaSet not Available"
    )


@pytest.mark.cluster
async def test_generation_not_yet_observed(kube: Client, namespace: str) -> None:
    current = DEPLOYMENT_STATES[6][0]
    obj = await live(kube, workload("Deployment", namespace), current)
    assert compute_status(obj).status == CURRENT
    changed = await kube.patch(
        "apps/v1", "Deployment", "web", {"spec": {"minReadySeconds": 5}}, namespace
    )
    assert compute_status(changed) == Status(
        IN_PROGRESS, "Deployment generation is 2, but latest observed generation is 1"
    )


STATEFULSET_STATES = [
    ({}, IN_PROGRESS, "Replicas: 0/1"),
    ({"replicas": 1}, IN_PROGRESS, "Ready: 0/1"),
    ({"replicas": 2, "readyReplicas": 2}, IN_PROGRESS, "Pending termination: 1"),
    # The API server defaults rollingUpdate.partition to 0: kstatus then counts updated replicas.
    ({"replicas": 1, "readyReplicas": 1}, IN_PROGRESS, "updated: 0/1"),
    (
        {"replicas": 1, "readyReplicas": 1, "updatedReplicas": 1},
        CURRENT,
        "Partition rollout complete. updated: 1",
    ),
]


@pytest.mark.cluster
@pytest.mark.parametrize(("status", "expected", "message"), STATEFULSET_STATES)
async def test_stateful_set(
    kube: Client, namespace: str, status: Object, expected: HealthStatus, message: str
) -> None:
    assert await judged(kube, workload("StatefulSet", namespace), status) == Status(
        expected, message
    )


@pytest.mark.cluster
async def test_stateful_set_on_delete_and_without_partition(kube: Client, namespace: str) -> None:
    on_delete = workload("StatefulSet", namespace, "manual", updateStrategy={"type": "OnDelete"})
    assert await judged(kube, on_delete) == Status(
        CURRENT, "StatefulSet is using the ondelete update strategy"
    )

    # Without a partition (which the API server always sets today) kstatus compares revisions.
    obj = await live(kube, workload("StatefulSet", namespace), STATEFULSET_STATES[4][0])
    del obj["spec"]["updateStrategy"]["rollingUpdate"]
    assert compute_status(obj) == Status(IN_PROGRESS, "current: 0/1")
    obj["status"].update(currentReplicas=1, currentRevision="web-1", updateRevision="web-2")
    assert compute_status(obj) == Status(
        IN_PROGRESS, "Waiting for updated revision to match current"
    )
    obj["status"]["updateRevision"] = "web-1"
    assert compute_status(obj) == Status(CURRENT, "All replicas scheduled as expected. Replicas: 1")


DAEMONSET_SCHEDULED = {"observedGeneration": 1, "desiredNumberScheduled": 2}
DAEMONSET_STATES = [
    ({}, IN_PROGRESS, "DaemonSet status.observedGeneration not found"),
    ({**DAEMONSET_SCHEDULED, "currentNumberScheduled": 1}, IN_PROGRESS, "Current: 1/2"),
    (
        {**DAEMONSET_SCHEDULED, "currentNumberScheduled": 2, "updatedNumberScheduled": 1},
        IN_PROGRESS,
        "Updated: 1/2",
    ),
    (
        {
            **DAEMONSET_SCHEDULED,
            "currentNumberScheduled": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 1,
            "numberReady": 1,
        },
        IN_PROGRESS,
        "Available: 1/2",
    ),
    (
        {
            **DAEMONSET_SCHEDULED,
            "currentNumberScheduled": 2,
            "updatedNumberScheduled": 2,
            "numberAvailable": 2,
            "numberReady": 2,
        },
        CURRENT,
        "All replicas scheduled as expected. Replicas: 2",
    ),
]


@pytest.mark.cluster
@pytest.mark.parametrize(("status", "expected", "message"), DAEMONSET_STATES)
async def test_daemon_set(
    kube: Client, namespace: str, status: Object, expected: HealthStatus, message: str
) -> None:
    assert await judged(kube, workload("DaemonSet", namespace), status) == Status(expected, message)


REPLICASET_STATES = [
    ({}, IN_PROGRESS, "Labelled: 0/1"),
    ({"replicas": 1, "fullyLabeledReplicas": 1}, IN_PROGRESS, "Available: 0/1"),
    (
        {"replicas": 2, "fullyLabeledReplicas": 2, "readyReplicas": 2, "availableReplicas": 2},
        IN_PROGRESS,
        "Pending termination: 1",
    ),
    (
        {
            "replicas": 1,
            "fullyLabeledReplicas": 1,
            "readyReplicas": 1,
            "availableReplicas": 1,
            "conditions": [condition("ReplicaFailure", "True", "FailedCreate")],
        },
        IN_PROGRESS,
        "Replica Failure condition. Check Pods",
    ),
    (
        {"replicas": 1, "fullyLabeledReplicas": 1, "readyReplicas": 1, "availableReplicas": 1},
        CURRENT,
        "ReplicaSet is available. Replicas: 1",
    ),
]


@pytest.mark.cluster
@pytest.mark.parametrize(("status", "expected", "message"), REPLICASET_STATES)
async def test_replica_set(
    kube: Client, namespace: str, status: Object, expected: HealthStatus, message: str
) -> None:
    assert await judged(kube, workload("ReplicaSet", namespace), status) == Status(
        expected, message
    )


JOB_STATES = [
    ({}, IN_PROGRESS, "Job not started. active: 0/1"),
    # Unlike kstatus, Flux keeps a running Job InProgress until it completes.
    (
        {"startTime": T0, "active": 1},
        IN_PROGRESS,
        "Job in progress. success:0, active: 1, failed: 0",
    ),
    (
        {
            "startTime": T0,
            "completionTime": T0,
            "succeeded": 1,
            "conditions": [
                condition("SuccessCriteriaMet", "True"),
                condition("Complete", "True"),
            ],
        },
        CURRENT,
        "Job Completed. succeeded: 1/1",
    ),
    (
        {
            "startTime": T0,
            "failed": 1,
            "conditions": [condition("FailureTarget", "True"), condition("Failed", "True")],
        },
        FAILED,
        "Job Failed. failed: 1/1",
    ),
]


@pytest.mark.cluster
@pytest.mark.parametrize(("status", "expected", "message"), JOB_STATES)
async def test_job(
    kube: Client, namespace: str, status: Object, expected: HealthStatus, message: str
) -> None:
    assert await judged(kube, job(namespace), status) == Status(expected, message)


@pytest.mark.cluster
async def test_suspended_job_is_current(kube: Client, namespace: str) -> None:
    assert await judged(kube, job(namespace, suspend=True)) == Status(CURRENT, "Job is suspended")


def pod_status(phase: str, *conditions: dict[str, str], **extra: Any) -> Object:
    return {"phase": phase, "conditions": list(conditions), **extra}


CRASHING = {
    "name": "app",
    "image": "example.com/app:1",
    "imageID": "",
    "ready": False,
    "restartCount": 4,
    "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off 40s"}},
}
POD_STATES = [
    ({}, IN_PROGRESS, "Pod is in the Pending phase"),
    (pod_status("Running"), IN_PROGRESS, "Pod is running but is not Ready"),
    (pod_status("Running", condition("Ready", "True")), CURRENT, "Pod is Ready"),
    (
        pod_status("Running", condition("Ready", "False"), containerStatuses=[CRASHING]),
        FAILED,
        "Containers in CrashLoop state: app",
    ),
    (pod_status("Succeeded"), CURRENT, "Pod has completed successfully"),
    (pod_status("Failed"), CURRENT, "Pod has completed, but not successfully"),
]


@pytest.mark.cluster
@pytest.mark.parametrize(("status", "expected", "message"), POD_STATES)
async def test_pod(
    kube: Client, namespace: str, status: Object, expected: HealthStatus, message: str
) -> None:
    pod = manifest("v1", "Pod", namespace, "web", **POD_SPEC)
    assert await judged(kube, pod, status) == Status(expected, message)


@pytest.mark.cluster
async def test_unschedulable_pod_fails_after_the_schedule_window(
    kube: Client, namespace: str
) -> None:
    pod = manifest("v1", "Pod", namespace, "web", **POD_SPEC)
    unschedulable = condition("PodScheduled", "False", "Unschedulable", "0/0 nodes are available")
    obj = await live(kube, pod, pod_status("Pending", unschedulable))
    assert compute_status(obj) == Status(IN_PROGRESS, "Pod has not been scheduled")
    created = datetime.fromisoformat(obj["metadata"]["creationTimestamp"])
    after_window = created + timedelta(seconds=16)
    assert compute_status(obj, now=after_window) == Status(FAILED, "Pod could not be scheduled")


@pytest.mark.cluster
async def test_persistent_volume_claim(kube: Client, namespace: str) -> None:
    claim = manifest(
        "v1",
        "PersistentVolumeClaim",
        namespace,
        "data",
        accessModes=["ReadWriteOnce"],
        resources={"requests": {"storage": "1Gi"}},
    )
    obj = await live(kube, claim)
    assert compute_status(obj) == Status(IN_PROGRESS, "PVC is not Bound. phase: Pending")
    bound = await kube.patch_status(obj, {"phase": "Bound"})
    assert compute_status(bound) == Status(CURRENT, "PVC is Bound")


@pytest.mark.cluster
async def test_service(kube: Client, namespace: str) -> None:
    port = [{"port": 80}]
    cluster_ip = manifest("v1", "Service", namespace, "web", ports=port)
    assert await judged(kube, cluster_ip) == Status(CURRENT, "Service is ready")
    # kstatus only asks for a cluster IP, which the API server allocates at once: a
    # LoadBalancer without ingress is Current.
    lb = manifest("v1", "Service", namespace, "public", type="LoadBalancer", ports=port)
    obj = await live(kube, lb)
    assert obj["status"]["loadBalancer"] == {}
    assert compute_status(obj) == Status(CURRENT, "Service is ready")
    obj["spec"]["clusterIP"] = ""
    assert compute_status(obj) == Status(
        IN_PROGRESS, "ClusterIP not set. Service type: LoadBalancer"
    )


@pytest.mark.cluster
async def test_custom_resource_definition(kube: Client, group: str) -> None:
    """The API server's own controllers establish a CRD, or refuse names already taken."""
    ref = ObjectRef.of(crd(group, "alphas", "Alpha"))
    await kube.create(crd(group, "alphas", "Alpha"))
    result = await wait_for(kube, [ref], timeout=30)
    assert result.ok, result.error
    assert result.statuses[ref] == Status(CURRENT, "CRD is established")

    # A second CRD for the same kind: its names are not accepted, which is final.
    clash = ObjectRef.of(crd(group, "betas", "Alpha"))
    await kube.create(crd(group, "betas", "Alpha"))
    result = await wait_for(kube, [clash], timeout=30)
    assert result.error == (
        f"failed early due to stalled resources: [CustomResourceDefinition/betas.{group} "
        "status: 'Failed']"
    )
    assert result.statuses[clash] == Status(FAILED, '"AlphaList" is already in use')
    assert not result.timed_out


@pytest.mark.cluster
async def test_namespace(kube: Client) -> None:
    name = f"health-{secrets.token_hex(4)}"
    assert await judged(kube, manifest("v1", "Namespace", None, name)) == Status(
        CURRENT, "Resource is current"
    )
    # Nothing finalizes a deleted namespace here: it stays Terminating.
    deleted = await kube.delete("v1", "Namespace", name)
    assert compute_status(deleted) == Status(
        HealthStatus.TERMINATING, "Resource scheduled for deletion"
    )


@pytest.mark.cluster
async def test_pod_disruption_budget(kube: Client, namespace: str) -> None:
    pdb = manifest(
        "policy/v1",
        "PodDisruptionBudget",
        namespace,
        "web",
        minAvailable=1,
        selector={"matchLabels": LABELS},
    )
    obj = await live(kube, pdb, {"observedGeneration": 1})
    assert compute_status(obj) == Status(CURRENT, "AllowedDisruptions has been computed.")
    changed = await kube.patch(
        "policy/v1", "PodDisruptionBudget", "web", {"spec": {"minAvailable": 2}}, namespace
    )
    assert compute_status(changed) == Status(
        IN_PROGRESS, "PodDisruptionBudget generation is 2, but latest observed generation is 1"
    )


@pytest.mark.cluster
async def test_always_ready_kinds_and_terminating(kube: Client, namespace: str) -> None:
    secret = manifest("v1", "Secret", namespace, "token")
    assert await judged(kube, secret) == Status(CURRENT, "Resource is always ready")
    held = manifest("v1", "ConfigMap", namespace, "held")
    held["metadata"]["finalizers"] = ["example.com/hold"]
    assert await judged(kube, held) == Status(CURRENT, "Resource is always ready")
    deleted = await kube.delete("v1", "ConfigMap", "held", namespace)
    assert compute_status(deleted) == Status(
        HealthStatus.TERMINATING, "Resource scheduled for deletion"
    )
    await kube.patch("v1", "ConfigMap", "held", {"metadata": {"finalizers": None}}, namespace)


@pytest.mark.cluster
async def test_flux_kind_with_ready_condition(kube: Client, namespace: str, widgets: str) -> None:
    """Flux's kinds report Ready, Reconciling and Stalled; kstatus reads them generically."""
    at = {"lastTransitionTime": T0}
    states = [
        (None, CURRENT, "Resource is current"),  # no status yet: kstatus cannot tell
        (
            {"conditions": [{**condition("Ready", "False", "Progressing", "fetching"), **at}]},
            IN_PROGRESS,
            "fetching",
        ),
        (
            {
                "conditions": [
                    {**condition("Reconciling", "True", "Progressing", "reconciling"), **at},
                    {**condition("Ready", "Unknown", "Progressing", "reconciling"), **at},
                ]
            },
            IN_PROGRESS,
            "reconciling",
        ),
        (
            {
                "observedGeneration": 1,
                "conditions": [
                    {**condition("Stalled", "True", "InvalidURL", "invalid URL"), **at},
                    {**condition("Ready", "False", "InvalidURL", "invalid URL"), **at},
                ],
            },
            FAILED,
            "invalid URL",
        ),
        (
            {
                "observedGeneration": 1,
                "conditions": [{**condition("Ready", "True", "Succeeded", "stored"), **at}],
            },
            CURRENT,
            "Resource is Ready",
        ),
    ]
    for index, (status, expected, message) in enumerate(states):
        obj = widget(widgets, namespace, f"w{index}")
        assert await judged(kube, obj, status) == Status(expected, message), status

    behind = await kube.patch(widgets, "Widget", "w4", {"spec": {"url": "oci://x"}}, namespace)
    assert compute_status(behind) == Status(
        IN_PROGRESS, "Widget generation is 2, but latest observed generation is 1"
    )


# -- waiting ---------------------------------------------------------------------------------------


DEPLOYMENT_CURRENT = DEPLOYMENT_STATES[6][0]
DEPLOYMENT_STALLED = DEPLOYMENT_STATES[7][0]


async def later(delay: float, write: Any) -> None:
    await asyncio.sleep(delay)
    await write


@pytest.mark.cluster
async def test_timeout_lists_what_is_not_ready_as_flux(kube: Client, namespace: str) -> None:
    deployment = await live(kube, workload("Deployment", namespace))
    config = await live(kube, manifest("v1", "ConfigMap", namespace, "settings"))
    refs = [ObjectRef.of(deployment), ObjectRef.of(config)]

    result = await wait_for(kube, refs, timeout=1)

    assert result.error == f"timeout waiting for: [Deployment/{namespace}/web status: 'InProgress']"
    assert result.timed_out
    assert not result.ok
    assert result.elapsed >= 1
    assert result.statuses == {
        refs[0]: Status(IN_PROGRESS, "Replicas: 0/1"),
        refs[1]: Status(CURRENT, "Resource is always ready"),
    }
    assert result.not_ready() == {refs[0]: Status(IN_PROGRESS, "Replicas: 0/1")}


@pytest.mark.cluster
@pytest.mark.parametrize("watch", [True, False], ids=["watch", "poll"])
async def test_wait_ends_when_the_rollout_completes(
    kube: Client, namespace: str, watch: bool
) -> None:
    deployment = await live(kube, workload("Deployment", namespace))
    job_obj = await live(kube, job(namespace), JOB_STATES[1][0])
    rollout = asyncio.create_task(later(0.5, kube.patch_status(deployment, DEPLOYMENT_CURRENT)))
    finish = asyncio.create_task(
        later(1.0, kube.patch_status(job_obj, {**JOB_STATES[2][0], "active": None}))
    )

    result = await wait_for(
        kube,
        [ObjectRef.of(deployment), ObjectRef.of(job_obj)],
        timeout=30,
        interval=0.2,
        watch=watch,
    )
    await asyncio.gather(rollout, finish)

    assert result.ok, result.error
    assert result.elapsed < 10
    assert [s.message for s in result.statuses.values()] == [
        "Deployment is available. Replicas: 1",
        "Job Completed. succeeded: 1/1",
    ]


@pytest.mark.cluster
async def test_watch_sees_changes_sooner_than_the_poll_interval(
    kube: Client, namespace: str
) -> None:
    deployment = await live(kube, workload("Deployment", namespace))
    rollout = asyncio.create_task(later(0.3, kube.patch_status(deployment, DEPLOYMENT_CURRENT)))
    result = await wait_for(kube, [ObjectRef.of(deployment)], timeout=30, interval=20)
    await rollout
    assert result.ok, result.error
    assert result.elapsed < 5


@pytest.mark.cluster
async def test_failed_object_ends_the_wait_early(kube: Client, namespace: str) -> None:
    stalled = await live(kube, workload("Deployment", namespace, "api"), DEPLOYMENT_STALLED)
    pending = await live(kube, workload("Deployment", namespace, "web"))
    refs = [ObjectRef.of(stalled), ObjectRef.of(pending)]

    result = await wait_for(kube, refs, timeout=60)

    assert result.error == (
        f"failed early due to stalled resources: [Deployment/{namespace}/api status: 'Failed']"
    )
    assert not result.timed_out
    assert result.elapsed < 10
    assert result.statuses[refs[0]] == Status(FAILED, "Progress deadline exceeded")


@pytest.mark.cluster
async def test_without_fail_fast_only_failed_and_current_end_the_wait(
    kube: Client, namespace: str
) -> None:
    stalled = ObjectRef.of(
        await live(kube, workload("Deployment", namespace, "api"), DEPLOYMENT_STALLED)
    )
    pending = ObjectRef.of(await live(kube, workload("Deployment", namespace, "web")))

    # Something may still change: wait for all of it, then list every object not Current.
    result = await wait_for(kube, [stalled, pending], timeout=1, fail_fast=False)
    assert result.timed_out
    assert result.error == (
        f"timeout waiting for: [Deployment/{namespace}/api status: 'Failed', "
        f"Deployment/{namespace}/web status: 'InProgress']"
    )

    # Only Failed and Current left: nothing will change, so the wait ends at once.
    await kube.patch_status(
        await kube.get("apps/v1", "Deployment", "web", namespace), DEPLOYMENT_CURRENT
    )
    result = await wait_for(kube, [stalled, pending], timeout=60, fail_fast=False)
    assert result.error == (
        f"failed early due to stalled resources: [Deployment/{namespace}/api status: 'Failed']"
    )
    assert result.elapsed < 10


@pytest.mark.cluster
async def test_not_found_and_unknown(kube: Client, namespace: str) -> None:
    missing = ObjectRef("v1", "ConfigMap", namespace, "missing")
    unknown = ObjectRef("example.com/v1", "Nothing", namespace, "x")
    result = await wait_for(kube, [missing, unknown], timeout=0.5, interval=0.1)
    assert result.error == (
        f"timeout waiting for: [ConfigMap/{namespace}/missing status: 'NotFound', "
        f"Nothing/{namespace}/x status: 'Unknown': "
        "no matches for kind 'Nothing' in version 'example.com/v1'"
        "]"
    )
    assert result.statuses[missing] == Status(HealthStatus.NOT_FOUND, "Resource not found")

    # A Job with a TTL may be gone once finished: Flux counts that as done.
    gone = ObjectRef("batch/v1", "Job", namespace, "cleanup")
    result = await wait_for(kube, [gone], timeout=5, jobs_with_ttl=[gone])
    assert result.ok, result.error
    assert result.elapsed < 2


@pytest.mark.cluster
async def test_object_created_during_the_wait(kube: Client, namespace: str) -> None:
    config = manifest("v1", "ConfigMap", namespace, "late")
    created = asyncio.create_task(later(0.3, kube.create(config)))
    result = await wait_for(kube, [ObjectRef.of(config)], timeout=30)
    await created
    assert result.ok, result.error
    assert result.elapsed < 5


@pytest.mark.cluster
async def test_flux_kind_becomes_ready_during_the_wait(
    kube: Client, namespace: str, widgets: str
) -> None:
    reconciling = {"conditions": [condition("Ready", "Unknown", "Progressing", "reconciling")]}
    ready = {"conditions": [condition("Ready", "True", "Succeeded", "stored artifact")]}
    obj = await live(kube, widget(widgets, namespace), reconciling)
    ready_later = asyncio.create_task(later(0.3, kube.patch_status(obj, ready)))
    result = await wait_for(kube, [ObjectRef.of(obj)], timeout=30)
    await ready_later
    assert result.ok, result.error
    assert result.statuses == {ObjectRef.of(obj): Status(CURRENT, "Resource is Ready")}


@pytest.mark.cluster
async def test_nothing_to_wait_for(kube: Client) -> None:
    result = await wait_for(kube, [], timeout=1)
    assert result.ok
    assert result.statuses == {}


def test_object_ref_prints_as_flux() -> None:
    namespaced = ObjectRef.of(manifest("apps/v1", "Deployment", "apps", "web"))
    assert str(namespaced) == "Deployment/apps/web"
    assert namespaced.group == "apps"
    cluster_scoped = ObjectRef("v1", "Namespace", "", "apps")
    assert str(cluster_scoped) == "Namespace/apps"
    assert cluster_scoped == ObjectRef("v1", "Namespace", None, "apps")


# -- healthCheckExprs -----------------------------------------------------------------------------


def synced_check(api_version: str, kind: str = "Widget", **exprs: str) -> CustomHealthCheck:
    """The SealedSecret example of Flux's documentation."""
    defaults = {
        "failed": "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
        "current": "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
    }
    return CustomHealthCheck(api_version=api_version, kind=kind, **{**defaults, **exprs})


@needs_celpy
@pytest.mark.cluster
async def test_health_check_exprs(kube: Client, namespace: str, widgets: str) -> None:
    checks = CustomHealthChecks([synced_check(widgets)])
    synced = {"conditions": [condition("Synced", "True")]}
    out_of_sync = {"conditions": [condition("Synced", "False", "Failed", "cannot decrypt")]}
    # The Ready condition that kstatus would read is ignored: the expressions decide.
    ready = {"conditions": [condition("Ready", "True"), condition("Synced", "Unknown")]}

    def judge(obj: Object) -> Status:
        return compute_status(obj, readers=[checks])

    assert judge(await live(kube, widget(widgets, namespace, "a"), synced)) == Status(
        CURRENT, "healthCheckExprs: Current is true"
    )
    assert judge(await live(kube, widget(widgets, namespace, "b"), out_of_sync)) == Status(
        FAILED, "healthCheckExprs: Failed is true"
    )
    assert judge(await live(kube, widget(widgets, namespace, "c"), ready)) == Status(
        IN_PROGRESS, "healthCheckExprs: no expression is true"
    )
    no_status = judge(await live(kube, widget(widgets, namespace, "d")))
    assert no_status.status == HealthStatus.UNKNOWN
    assert no_status.message == (
        "failed to evaluate the CEL expression "
        "'status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')': "
        "undeclared reference to 'status'"
    )

    # A spec change not yet observed is InProgress before any expression runs.
    observed = await live(
        kube, widget(widgets, namespace, "e"), {"observedGeneration": 1, **synced}
    )
    assert judge(observed).status == CURRENT
    behind = await kube.patch(widgets, "Widget", "e", {"spec": {"url": "oci://x"}}, namespace)
    assert judge(behind).status == IN_PROGRESS


@needs_celpy
@pytest.mark.cluster
async def test_health_check_exprs_in_a_wait(kube: Client, namespace: str, widgets: str) -> None:
    group = widgets.partition("/")[0]
    # An entry without kind covers every kind of its group; inProgress is tried first.
    checks = CustomHealthChecks(
        [
            CustomHealthCheck(
                api_version=widgets,
                kind="",
                in_progress="status.phase == 'Provisioning'",
                failed="status.phase == 'Failed'",
                current="status.phase == 'Ready'",
            )
        ]
    )
    assert checks.supports(group, "Widget")
    assert not checks.supports(group.upper(), "Widget")
    obj = await live(kube, widget(widgets, namespace), {"phase": "Provisioning"})
    ready_later = asyncio.create_task(later(0.3, kube.patch_status(obj, {"phase": "Ready"})))
    result = await wait_for(kube, [ObjectRef.of(obj)], timeout=30, readers=[checks])
    await ready_later
    assert result.ok, result.error

    await kube.patch_status(obj, {"phase": "Failed"})
    result = await wait_for(kube, [ObjectRef.of(obj)], timeout=30, readers=[checks])
    assert result.error == (
        f"failed early due to stalled resources: [Widget/{namespace}/podinfo status: 'Failed']"
    )


@needs_celpy
@pytest.mark.cluster
async def test_health_check_exprs_do_not_replace_flux_job_rules(
    kube: Client, namespace: str
) -> None:
    checks = CustomHealthChecks(
        [CustomHealthCheck(api_version="batch/v1", kind="Job", current="true")]
    )
    assert checks.supports("batch", "Job")
    obj = await live(kube, job(namespace))
    assert compute_status(obj, readers=[checks]) == Status(
        IN_PROGRESS, "Job not started. active: 0/1"
    )


FLUX_DOCS_OBJECT: Object = {
    "apiVersion": "cert-manager.io/v1",
    "kind": "Certificate",
    "metadata": {"name": "web", "namespace": "apps", "generation": 2},
    "spec": {"secretName": "web-tls"},
    "status": {
        "observedGeneration": 2,
        "conditions": [
            {"type": "Ready", "status": "True", "observedGeneration": 2, "reason": "Ready"},
            {"type": "Issuing", "status": "False", "observedGeneration": 1},
        ],
    },
}


@needs_celpy
@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')", True),
        (
            "status.conditions.filter(e, e.type == 'Issuing')"
            ".all(e, e.observedGeneration == metadata.generation && e.status == 'True')",
            False,
        ),
        ("status.conditions.exists(e, e.type == 'Ready' && e.status == 'True')", True),
        (
            "has(status.observedGeneration) && status.observedGeneration != metadata.generation",
            False,
        ),
        ("has(status.certificate) && status.certificate.ready", False),
        ("status.conditions.exists_one(e, e.type == 'Issuing')", True),
        ("'Ready' in status.conditions.map(e, e.type)", True),
        ("size(status.conditions) == 2 && spec.secretName.endsWith('-tls')", True),
        ("metadata.name.matches('^w.b$')", True),
    ],
)
def test_cel_covers_flux_documented_expressions(source: str, expected: bool) -> None:
    assert Expression(source).evaluate(FLUX_DOCS_OBJECT) is expected


@needs_celpy
def test_cel_errors_are_worded_as_flux() -> None:
    with pytest.raises(HealthCheckExprError) as duplicate:
        CustomHealthChecks([synced_check("bitnami.com/v1alpha1"), synced_check("bitnami.com/v1")])
    assert str(duplicate.value) == (
        "duplicate custom health check for GroupKind Widget.bitnami.com at healthchecks[1]"
    )
    with pytest.raises(HealthCheckExprError) as no_current:
        CustomHealthChecks([synced_check("v1", current="")])
    assert str(no_current.value) == (
        "failed to create custom status evaluator for healthchecks[0]: "
        "expression Current not specified"
    )
    with pytest.raises(HealthCheckExprError) as syntax:
        CustomHealthChecks([synced_check("v1", failed="status.")])
    assert str(syntax.value) == (
        "failed to create custom status evaluator for healthchecks[0]: "
        "failed to parse the expression Failed: "
        "failed to parse the CEL expression 'status.': syntax error at line 1, column 7"
    )
    # cel-go's optional syntax, which Flux enables, is beyond cel-python: refused up front.
    with pytest.raises(HealthCheckExprError, match="optional field selection is not supported"):
        Expression("status.?conditions.orValue([]).exists(e, e.type == 'Ready')")
    with pytest.raises(HealthCheckExprError, match="as boolean"):
        Expression("status.conditions").evaluate(FLUX_DOCS_OBJECT)

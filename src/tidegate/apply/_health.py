"""Health of applied objects: kstatus's rules, and waiting until objects are Current.

`compute_status` judges one object — InProgress, Failed, Current, Terminating, NotFound or Unknown,
with a message — by the rules of kstatus (`sigs.k8s.io/cli-utils/pkg/kstatus/status`, as built into
Flux from its fork `github.com/fluxcd/cli-utils`) and Flux's own Job rules
(`fluxcd/pkg/runtime/statusreaders`), so tidegate calls an object healthy exactly when Flux's
kustomize-controller does for `spec.wait` and `spec.healthChecks`. `wait_for` follows a set of
objects until all are Current, one has Failed, or the time is up, and words the outcome as Flux's
`ssa.ResourceManager.WaitForSet` does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any, NamedTuple, Protocol

from tidegate.kube import Client, Impersonation, KubeError, NotFound, Watcher

log = logging.getLogger(__name__)

# kstatus gives a Pod this long to be scheduled before calling it unschedulable.
SCHEDULE_WINDOW = timedelta(seconds=15)

# The API server's default for a Deployment without progressDeadlineSeconds is 600; kstatus reads an
# absent field as math.MaxInt32, the value with which the controller never reports a deadline.
_NO_PROGRESS_DEADLINE = 2**31 - 1


class HealthStatus(StrEnum):
    """kstatus's statuses, spelled as Flux prints them."""

    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    CURRENT = "Current"
    TERMINATING = "Terminating"
    NOT_FOUND = "NotFound"
    UNKNOWN = "Unknown"


@dataclass(frozen=True)
class Status:
    """The health of one object and why (`Replicas: 0/1`, `PVC is Bound`)."""

    status: HealthStatus
    message: str = ""


class StatusReader(Protocol):
    """Judges the kinds it supports in place of the built-in rules, like kstatus's custom status
    readers (`healthCheckExprs` are one)."""

    def supports(self, group: str, kind: str) -> bool: ...

    def read(self, obj: Mapping[str, Any]) -> Status: ...


def compute_status(
    obj: Mapping[str, Any],
    *,
    readers: Sequence[StatusReader] = (),
    now: datetime | None = None,
) -> Status:
    """The health of an object as read from the API server, as Flux's kustomize-controller sees it.

    Jobs follow Flux's Job rules (Current only once complete, or when suspended) even when a reader
    supports them, since Flux consults its Job reader first; other kinds go to the first reader
    that supports them, else to kstatus. A field of the wrong type makes the status Unknown, as
    kstatus's error does in Flux. `now` (for the Pod scheduling window) defaults to the clock.
    """
    group, kind = _group_kind(obj)
    try:
        if (group, kind) == ("batch", "Job"):
            return _flux_job(obj)
        for reader in readers:
            if reader.supports(group, kind):
                return reader.read(obj)
        return _kstatus(obj, group, kind, now or datetime.now(UTC))
    except _Malformed as exc:
        return Status(HealthStatus.UNKNOWN, str(exc))


# -- kstatus -------------------------------------------------------------------------------------


def _kstatus(obj: Mapping[str, Any], group: str, kind: str, now: datetime) -> Status:
    generic = _generic(obj)
    if generic is not None:
        return generic
    rule = _RULES.get((group, kind))
    if rule is not None:
        return rule(obj, now)
    ready = _ready_condition(obj)
    if ready is not None:
        return ready
    # An unknown kind without kstatus's conditions or a Ready condition: kstatus assumes Current.
    return _current("Resource is current")


def _generic(obj: Mapping[str, Any]) -> Status | None:
    """Deletion, the observed generation, and the Reconciling and Stalled conditions: when these
    decide, kstatus does not look at the kind's own rules."""
    if _nested_string(obj, "metadata", "deletionTimestamp"):
        return Status(HealthStatus.TERMINATING, "Resource scheduled for deletion")
    generation = _nested_int(obj, "metadata", "generation")
    if generation is not None:
        observed = _nested_int(obj, "status", "observedGeneration")
        if observed is not None and observed != generation:
            return _in_progress(
                f"{_kind(obj)} generation is {generation}, "
                f"but latest observed generation is {observed}"
            )
    for condition in _conditions(obj):
        if condition.type == "Reconciling" and condition.status == "True":
            return _in_progress(condition.message)
        if condition.type == "Stalled" and condition.status == "True":
            return _failed(condition.message)
    return None


def _ready_condition(obj: Mapping[str, Any]) -> Status | None:
    """The last resort for kinds kstatus has no rules for, Flux's among them."""
    for condition in _conditions(obj):
        if condition.type != "Ready":
            continue
        if condition.status == "True":
            return _current("Resource is Ready")
        if condition.status in ("False", "Unknown"):
            return _in_progress(condition.message)
    return None


def _always_ready(obj: Mapping[str, Any], now: datetime) -> Status:
    return _current("Resource is always ready")


def _deployment(obj: Mapping[str, Any], now: datetime) -> Status:
    deadline = _int(obj, ("spec", "progressDeadlineSeconds"), _NO_PROGRESS_DEADLINE)
    progressing = deadline == _NO_PROGRESS_DEADLINE
    available = False
    for condition in _conditions(obj):
        if condition.type == "Progressing":
            if condition.reason == "ProgressDeadlineExceeded":
                return _failed("Progress deadline exceeded")
            if condition.status == "True" and condition.reason == "NewReplicaSetAvailable":
                progressing = True
        elif condition.type == "Available" and condition.status == "True":
            available = True

    spec = _int(obj, ("spec", "replicas"), 1)
    replicas = _int(obj, ("status", "replicas"), 0)
    updated = _int(obj, ("status", "updatedReplicas"), 0)
    ready = _int(obj, ("status", "readyReplicas"), 0)
    available_replicas = _int(obj, ("status", "availableReplicas"), 0)
    if spec > replicas:
        return _in_progress(f"Replicas: {replicas}/{spec}")
    if spec > updated:
        return _in_progress(f"Updated: {updated}/{spec}")
    if replicas > spec:
        return _in_progress(f"Pending termination: {replicas - spec}")
    if updated > available_replicas:
        return _in_progress(f"Available: {available_replicas}/{updated}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if not progressing:
        return _in_progress("ReplicaSet not Available")
    if not available:
        return _in_progress("Deployment not Available")
    return _current(f"Deployment is available. Replicas: {replicas}")


def _stateful_set(obj: Mapping[str, Any], now: datetime) -> Status:
    if _str(obj, ("spec", "updateStrategy", "type"), "") == "OnDelete":
        return _current("StatefulSet is using the ondelete update strategy")
    spec = _int(obj, ("spec", "replicas"), 1)
    ready = _int(obj, ("status", "readyReplicas"), 0)
    current = _int(obj, ("status", "currentReplicas"), 0)
    updated = _int(obj, ("status", "updatedReplicas"), 0)
    replicas = _int(obj, ("status", "replicas"), 0)
    partition = _int(obj, ("spec", "updateStrategy", "rollingUpdate", "partition"), -1)
    if spec > replicas:
        return _in_progress(f"Replicas: {replicas}/{spec}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress(f"Pending termination: {replicas - spec}")
    # The API server defaults the partition to 0, so this is the usual way out.
    if partition != -1:
        if updated < spec - partition:
            return _in_progress(f"updated: {updated}/{spec - partition}")
        return _current(f"Partition rollout complete. updated: {updated}")
    if spec > current:
        return _in_progress(f"current: {current}/{spec}")
    if _str(obj, ("status", "currentRevision"), "") != _str(obj, ("status", "updateRevision"), ""):
        return _in_progress("Waiting for updated revision to match current")
    return _current(f"All replicas scheduled as expected. Replicas: {replicas}")


def _daemon_set(obj: Mapping[str, Any], now: datetime) -> Status:
    # A DaemonSet the controller has seen always has both; the generic check lets them be absent.
    if _nested_int(obj, "metadata", "generation") is None:
        return _in_progress(f"{_kind(obj)} metadata.generation not found")
    if _nested_int(obj, "status", "observedGeneration") is None:
        return _in_progress(f"{_kind(obj)} status.observedGeneration not found")
    desired = _int(obj, ("status", "desiredNumberScheduled"), -1)
    current = _int(obj, ("status", "currentNumberScheduled"), 0)
    updated = _int(obj, ("status", "updatedNumberScheduled"), 0)
    available = _int(obj, ("status", "numberAvailable"), 0)
    ready = _int(obj, ("status", "numberReady"), 0)
    if desired == -1:
        return _in_progress("Missing .status.desiredNumberScheduled")
    if desired > current:
        return _in_progress(f"Current: {current}/{desired}")
    if desired > updated:
        return _in_progress(f"Updated: {updated}/{desired}")
    if desired > available:
        return _in_progress(f"Available: {available}/{desired}")
    if desired > ready:
        return _in_progress(f"Ready: {ready}/{desired}")
    return _current(f"All replicas scheduled as expected. Replicas: {desired}")


def _replica_set(obj: Mapping[str, Any], now: datetime) -> Status:
    for condition in _conditions(obj):
        if condition.type == "ReplicaFailure" and condition.status == "True":
            return _in_progress("Replica Failure condition. Check Pods")
    spec = _int(obj, ("spec", "replicas"), 1)
    replicas = _int(obj, ("status", "replicas"), 0)
    ready = _int(obj, ("status", "readyReplicas"), 0)
    available = _int(obj, ("status", "availableReplicas"), 0)
    labelled = _int(obj, ("status", "fullyLabeledReplicas"), 0)
    if spec > labelled:
        return _in_progress(f"Labelled: {labelled}/{spec}")
    if spec > available:
        return _in_progress(f"Available: {available}/{spec}")
    if spec > ready:
        return _in_progress(f"Ready: {ready}/{spec}")
    if replicas > spec:
        return _in_progress(f"Pending termination: {replicas - spec}")
    return _current(f"ReplicaSet is available. Replicas: {replicas}")


def _pvc(obj: Mapping[str, Any], now: datetime) -> Status:
    phase = _str(obj, ("status", "phase"), "unknown")
    if phase != "Bound":
        return _in_progress(f"PVC is not Bound. phase: {phase}")
    return _current("PVC is Bound")


def _pod(obj: Mapping[str, Any], now: datetime) -> Status:
    conditions = _conditions(obj)
    phase = _str(obj, ("status", "phase"), "")
    if phase == "Succeeded":
        return _current("Pod has completed successfully")
    if phase == "Failed":
        return _current("Pod has completed, but not successfully")
    if phase == "Running":
        if any(c.type == "Ready" and c.status == "True" for c in conditions):
            return _current("Pod is Ready")
        crashing = _crash_looping_containers(obj)
        if crashing:
            return _failed(f"Containers in CrashLoop state: {','.join(crashing)}")
        return _in_progress("Pod is running but is not Ready")
    if phase == "Pending":
        unschedulable = next(
            (c for c in conditions if c.type == "PodScheduled" and c.status == "False"), None
        )
        if unschedulable is not None and unschedulable.reason == "Unschedulable":
            created = _timestamp(obj, "metadata", "creationTimestamp")
            if created is not None and now - SCHEDULE_WINDOW < created:
                return _in_progress("Pod has not been scheduled")
            return _failed("Pod could not be scheduled")
        return _in_progress("Pod is in the Pending phase")
    if phase == "":
        return _in_progress("Pod phase not available")
    raise _Malformed(f"unknown phase {phase}")


def _crash_looping_containers(obj: Mapping[str, Any]) -> list[str]:
    statuses = _field(obj, ("status", "containerStatuses"))
    if statuses is _MISSING:
        return []
    if not isinstance(statuses, list):
        raise _Malformed(f".status.containerStatuses is of the type {_json_type(statuses)}")
    names = []
    for item in statuses:
        name = _field(item, ("name",))
        reason = _field(item, ("state", "waiting", "reason"))
        if isinstance(name, str) and reason == "CrashLoopBackOff":
            names.append(name)
    return names


def _pdb(obj: Mapping[str, Any], now: datetime) -> Status:
    # The generic check has already compared the observed generation, and the disruption
    # controller sets no condition that could say more.
    return _current("AllowedDisruptions has been computed.")


def _service(obj: Mapping[str, Any], now: datetime) -> Status:
    # kstatus looks at the cluster IP only, not at status.loadBalancer.ingress.
    service_type = _str(obj, ("spec", "type"), "ClusterIP")
    if service_type == "LoadBalancer" and _str(obj, ("spec", "clusterIP"), "") == "":
        return _in_progress("ClusterIP not set. Service type: LoadBalancer")
    return _current("Service is ready")


def _crd(obj: Mapping[str, Any], now: datetime) -> Status:
    for condition in _conditions(obj):
        if condition.type == "NamesAccepted" and condition.status == "False":
            return _failed(condition.message)
        if condition.type == "Established":
            if condition.status == "False" and condition.reason != "Installing":
                return _failed(condition.message)
            if condition.status == "True":
                return _current("CRD is established")
    return _in_progress("Install in progress")


_RULES: dict[tuple[str, str], Callable[[Mapping[str, Any], datetime], Status]] = {
    ("", "Service"): _service,
    ("", "Pod"): _pod,
    ("", "Secret"): _always_ready,
    ("", "ConfigMap"): _always_ready,
    ("", "PersistentVolumeClaim"): _pvc,
    ("apps", "StatefulSet"): _stateful_set,
    ("apps", "DaemonSet"): _daemon_set,
    ("extensions", "DaemonSet"): _daemon_set,
    ("apps", "Deployment"): _deployment,
    ("extensions", "Deployment"): _deployment,
    ("apps", "ReplicaSet"): _replica_set,
    ("extensions", "ReplicaSet"): _replica_set,
    ("policy", "PodDisruptionBudget"): _pdb,
    ("batch", "CronJob"): _always_ready,
    ("apiextensions.k8s.io", "CustomResourceDefinition"): _crd,
    # batch/Job: Flux replaces kstatus's Job rules with its own (see `_flux_job`).
}


def _flux_job(obj: Mapping[str, Any]) -> Status:
    """Flux's Job rules (fluxcd/pkg/runtime/statusreaders): unlike kstatus's, a running Job is
    still InProgress. They replace kstatus entirely, so a Job is never Terminating."""
    if _field(obj, ("spec", "suspend")) is True:
        return _current("Job is suspended")
    parallelism = _int(obj, ("spec", "parallelism"), 1)
    completions = _int(obj, ("spec", "completions"), parallelism)
    active = _int(obj, ("status", "active"), 0)
    succeeded = _int(obj, ("status", "succeeded"), 0)
    failed = _int(obj, ("status", "failed"), 0)
    for condition in _conditions(obj):
        if condition.type == "Complete" and condition.status == "True":
            return _current(f"Job Completed. succeeded: {succeeded}/{completions}")
        if condition.type == "Failed" and condition.status == "True":
            return _failed(f"Job Failed. failed: {failed}/{completions}")
    if _str(obj, ("status", "startTime"), "") == "":
        return _in_progress(f"Job not started. active: 0/{parallelism}")
    return _in_progress(f"Job in progress. success:{succeeded}, active: {active}, failed: {failed}")


def _in_progress(message: str) -> Status:
    return Status(HealthStatus.IN_PROGRESS, message)


def _failed(message: str) -> Status:
    return Status(HealthStatus.FAILED, message)


def _current(message: str) -> Status:
    return Status(HealthStatus.CURRENT, message)


# -- reading fields as kstatus does ---------------------------------------------------------------


class _Malformed(Exception):
    """A field kstatus must read has the wrong type: kstatus fails, and Flux reports Unknown."""


_MISSING: Any = object()


class _Condition(NamedTuple):
    type: str
    status: str
    reason: str
    message: str


def _field(obj: Any, path: Sequence[str]) -> Any:
    """The value at `path`, `_MISSING` if absent; `_Malformed` if a parent is not an object."""
    value = obj
    for depth, key in enumerate(path):
        if not isinstance(value, Mapping):
            where = "." + ".".join(path[:depth]) if depth else "the object"
            raise _Malformed(f"{where} is of the type {_json_type(value)}, expected object")
        if key not in value:
            return _MISSING
        value = value[key]
    return value


def _int(obj: Mapping[str, Any], path: Sequence[str], default: int) -> int:
    """kstatus's GetIntField: anything but an integer reads as the default."""
    try:
        value = _field(obj, path)
    except _Malformed:
        return default
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _str(obj: Mapping[str, Any], path: Sequence[str], default: str) -> str:
    """kstatus's GetStringField: anything but a string reads as the default."""
    try:
        value = _field(obj, path)
    except _Malformed:
        return default
    return value if isinstance(value, str) else default


def _nested_int(obj: Mapping[str, Any], *path: str) -> int | None:
    """An integer field that must be an integer when present (unstructured.NestedInt64)."""
    value = _field(obj, path)
    if value is _MISSING:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed(
            f"looking up {'.'.join(path)} from resource: "
            f"{value!r} is of the type {_json_type(value)}, expected int64"
        )
    return value


def _nested_string(obj: Mapping[str, Any], *path: str) -> str:
    value = _field(obj, path)
    if value is _MISSING:
        return ""
    if not isinstance(value, str):
        raise _Malformed(
            f"looking up {'.'.join(path)} from resource: "
            f"{value!r} is of the type {_json_type(value)}, expected string"
        )
    return value


def _timestamp(obj: Mapping[str, Any], *path: str) -> datetime | None:
    value = _field(obj, path)
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _conditions(obj: Mapping[str, Any]) -> list[_Condition]:
    """`status.conditions`, read as kstatus converts them (absent fields and nulls read as "")."""
    status = obj.get("status")
    if status is None:
        return []
    if not isinstance(status, Mapping):
        raise _Malformed(f".status is of the type {_json_type(status)}, expected object")
    items = status.get("conditions")
    if items is None:
        return []
    if not isinstance(items, list):
        raise _Malformed(f".status.conditions is of the type {_json_type(items)}, expected array")
    conditions = []
    for item in items:
        if item is None:
            item = {}
        if not isinstance(item, Mapping):
            raise _Malformed(f"a condition is of the type {_json_type(item)}, expected object")
        fields = []
        for key in _Condition._fields:
            value = item.get(key)
            if value is None:
                value = ""
            elif not isinstance(value, str):
                raise _Malformed(f"condition field {key!r} is of the type {_json_type(value)}")
            fields.append(value)
        conditions.append(_Condition(*fields))
    return conditions


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _group_kind(obj: Mapping[str, Any]) -> tuple[str, str]:
    api_version = obj.get("apiVersion")
    group = api_version.rpartition("/")[0] if isinstance(api_version, str) else ""
    return group, _kind(obj)


def _kind(obj: Mapping[str, Any]) -> str:
    kind = obj.get("kind")
    return kind if isinstance(kind, str) else ""


# -- waiting --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObjectRef:
    """An object to check: `apiVersion`, `kind`, `namespace` (None if cluster-scoped), `name`."""

    api_version: str
    kind: str
    namespace: str | None
    name: str

    def __post_init__(self) -> None:
        if self.namespace == "":
            object.__setattr__(self, "namespace", None)

    @classmethod
    def of(cls, obj: Mapping[str, Any]) -> ObjectRef:
        """The reference to a manifest or an object read from the API server."""
        meta = obj.get("metadata") or {}
        return cls(
            str(obj.get("apiVersion", "")),
            str(obj.get("kind", "")),
            meta.get("namespace"),
            str(meta.get("name", "")),
        )

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    def __str__(self) -> str:
        """`Kind/namespace/name`, or `Kind/name` when cluster-scoped, as Flux prints objects."""
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"


@dataclass(frozen=True)
class WaitResult:
    """How a wait ended: each object's last status (in the order given; an object whose status was
    never read is absent), whether the time ran out, how long it took, and — unless every object
    became Current — the error as Flux words it (`timeout waiting for: [Deployment/apps/web
    status: 'InProgress']`, `failed early due to stalled resources: [...]`)."""

    statuses: dict[ObjectRef, Status]
    timed_out: bool
    elapsed: float
    error: str | None

    @property
    def ok(self) -> bool:
        return self.error is None

    def not_ready(self) -> dict[ObjectRef, Status]:
        """The objects whose last status was not Current."""
        return {
            ref: status
            for ref, status in self.statuses.items()
            if status.status != HealthStatus.CURRENT
        }


async def wait_for(
    client: Client,
    objects: Iterable[ObjectRef],
    *,
    timeout: float,  # noqa: ASYNC109 - the wait's own deadline, as Flux's WaitOptions.Timeout
    interval: float = 5.0,
    fail_fast: bool = True,
    jobs_with_ttl: Collection[ObjectRef] = (),
    readers: Sequence[StatusReader] = (),
    watch: bool = True,
    impersonate: Impersonation | None = None,
) -> WaitResult:
    """Wait until every object is Current, with Flux's stopping rules.

    The wait ends when all objects are Current; when one is Failed (with `fail_fast`, as in
    kustomize-controller unless its DisableFailFastBehavior gate is set); when only Current and
    Failed objects are left (Flux stops there even without `fail_fast`, as nothing will change);
    or after `timeout` seconds. NotFound counts as Current for `jobs_with_ttl`, Jobs that the TTL
    controller deletes once finished.

    Every object is read once; if that does not settle it, the kinds with objects not yet Current
    are listed and watched (one `Watcher` per kind and namespace, selecting by name when it has one
    object), and a kind that cannot be watched (RBAC, no such kind yet) is read every `interval`
    seconds instead, as Flux polls. `watch=False` polls everything, holding no connection open.
    """
    start = time.monotonic()
    refs = list(dict.fromkeys(objects))
    progress = _Progress(refs, fail_fast=fail_fast, jobs_with_ttl=frozenset(jobs_with_ttl))
    follower = _Follower(client, progress, readers, impersonate, interval, watch)
    deadline = asyncio.timeout(timeout)
    try:
        async with deadline:
            await asyncio.gather(*(follower.read(ref) for ref in refs))
            if not progress.done.is_set():
                await follower.follow(
                    [ref for ref in refs if progress.statuses[ref].status != HealthStatus.CURRENT]
                )
    except TimeoutError:
        if not deadline.expired():
            raise
    timed_out = deadline.expired() and not progress.all_current()
    return WaitResult(
        statuses={ref: progress.statuses[ref] for ref in refs if ref in progress.statuses},
        timed_out=timed_out,
        elapsed=time.monotonic() - start,
        error=progress.error(timed_out=timed_out),
    )


class _Progress:
    """The last status of each object, and whether the wait can stop."""

    def __init__(
        self, refs: list[ObjectRef], *, fail_fast: bool, jobs_with_ttl: frozenset[ObjectRef]
    ) -> None:
        self.refs = refs
        self.fail_fast = fail_fast
        self.jobs_with_ttl = jobs_with_ttl
        self.statuses: dict[ObjectRef, Status] = {}
        self.done = asyncio.Event()
        if not refs:
            self.done.set()

    def observe(self, ref: ObjectRef, status: Status) -> None:
        self.statuses[ref] = status
        if self._settled():
            self.done.set()

    def _effective(self, ref: ObjectRef) -> HealthStatus | None:
        status = self.statuses.get(ref)
        if status is None:
            return None
        if status.status == HealthStatus.NOT_FOUND and ref in self.jobs_with_ttl:
            return HealthStatus.CURRENT
        return status.status

    def all_current(self) -> bool:
        return all(self._effective(ref) == HealthStatus.CURRENT for ref in self.refs)

    def _settled(self) -> bool:
        effective = [self._effective(ref) for ref in self.refs]
        if None in effective:
            return False
        if self.fail_fast and HealthStatus.FAILED in effective:
            return True
        return all(s in (HealthStatus.CURRENT, HealthStatus.FAILED) for s in effective)

    def error(self, *, timed_out: bool) -> str | None:
        """Flux's words for the objects that stopped the wait (ssa.WaitForSetWithContext)."""
        lines = []
        for ref in self.refs:
            status = self.statuses.get(ref)
            if status is None:
                if ref not in self.jobs_with_ttl:
                    lines.append(f"can't determine status for {ref}")
                continue
            if self._effective(ref) == HealthStatus.CURRENT:
                continue
            if status.status == HealthStatus.FAILED or timed_out:
                line = f"{ref} status: '{status.status}'"
                # Flux appends the reader's error, which only an Unknown status carries.
                if status.status == HealthStatus.UNKNOWN and status.message:
                    line += f": {status.message}"
                lines.append(line)
        if not lines:
            return None
        prefix = "timeout waiting for" if timed_out else "failed early due to stalled resources"
        return f"{prefix}: [{', '.join(lines)}]"


_NOT_FOUND = Status(HealthStatus.NOT_FOUND, "Resource not found")


def _key(ref: ObjectRef) -> str:
    """The key `Watcher.known` uses (`namespace/name`, or `name`)."""
    return f"{ref.namespace}/{ref.name}" if ref.namespace else ref.name


class _Follower:
    """Reads and watches objects, reporting each status to the progress."""

    def __init__(
        self,
        client: Client,
        progress: _Progress,
        readers: Sequence[StatusReader],
        impersonate: Impersonation | None,
        interval: float,
        watch: bool,
    ) -> None:
        self.client = client
        self.progress = progress
        self.readers = readers
        self.impersonate = impersonate
        self.interval = interval
        self.watch = watch

    async def read(self, ref: ObjectRef) -> None:
        try:
            obj = await self.client.get(
                ref.api_version, ref.kind, ref.name, ref.namespace, impersonate=self.impersonate
            )
        except NotFound:
            status = _NOT_FOUND
        except KubeError as exc:
            status = Status(HealthStatus.UNKNOWN, str(exc))
        else:
            status = self._status(ref, obj)
        self.progress.observe(ref, status)

    async def follow(self, pending: list[ObjectRef]) -> None:
        """Follow every object of the kinds and namespaces that have pending ones, until done."""
        groups: dict[tuple[str, str, str | None], list[ObjectRef]] = {}
        for ref in self.progress.refs:
            groups.setdefault((ref.api_version, ref.kind, ref.namespace), []).append(ref)
        keys = dict.fromkeys((ref.api_version, ref.kind, ref.namespace) for ref in pending)
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(self.progress.done.wait())]
        tasks += [asyncio.create_task(self._follow_group(groups[key])) for key in keys]
        try:
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in finished:
                task.result()  # a follower only ends by failing: surface it
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _follow_group(self, refs: list[ObjectRef]) -> None:
        first = refs[0]
        if self.watch:
            watcher = Watcher(
                self.client,
                first.api_version,
                first.kind,
                first.namespace,
                field_selector=f"metadata.name={first.name}" if len(refs) == 1 else None,
                impersonate=self.impersonate,
            )
            try:
                # The watcher lists, then watches from there (re-listing when needed), and keeps
                # what it knows of each object: every change is judged from that.
                async for _ in watcher.events():
                    for ref in refs:
                        obj = watcher.known.get(_key(ref))
                        self.progress.observe(
                            ref, _NOT_FOUND if obj is None else self._status(ref, obj)
                        )
            except KubeError as exc:
                # Not allowed to list or watch, or no such kind (yet): poll as Flux does.
                log.debug("cannot watch %s, polling every %ss: %s", first.kind, self.interval, exc)
        while True:
            await asyncio.sleep(self.interval)
            await asyncio.gather(*(self.read(ref) for ref in refs))

    def _status(self, ref: ObjectRef, obj: Mapping[str, Any]) -> Status:
        if "apiVersion" not in obj or "kind" not in obj:
            obj = {"apiVersion": ref.api_version, "kind": ref.kind, **obj}
        return compute_status(obj, readers=self.readers)

"""What every Flux-kind reconciler shares: the lifecycle around its steps.

A reconciler subclass lists its steps; a step changes the status it is given or raises a
`StepError` that names the condition and reason to report. `Reconciler.__call__` runs the
lifecycle Flux's controllers share: finalizer, deletion, suspension, the progressing status,
the steps, then one place that turns the outcome into conditions (with `Ready` summarised),
observed generation, the status patch, events and the requeue decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

from tidegate import kube
from tidegate.runtime import EventRecorder, Informer, Metrics, Request, Result

from ._conditions import (
    FAILED,
    INVALID,
    PROGRESSING_WITH_RETRY,
    READY,
    RECONCILING,
    STALLED,
    Conditions,
)

log = logging.getLogger("tidegate.controllers")

FINALIZER = "finalizers.fluxcd.io"
REQUESTED_AT = "reconcile.fluxcd.io/requestedAt"

NORMAL, WARNING = "Normal", "Warning"
# Seconds a run may take before its progressing status is written (see `progress_soon`).
PROGRESS_DELAY = 1.0

Spec = TypeVar("Spec")


class StepError(Exception):
    """A step's failure, with the condition it marks True and the reason users see.

    `stalling` errors cannot heal without a change to the object: the object is marked
    Stalled and not retried until its spec changes. With `requeue_after`, the object is
    reconciled again after that many seconds instead of with backoff (Flux's
    `ctrl.Result{RequeueAfter: ...}` for a wait, such as for dependencies).
    """

    def __init__(
        self,
        condition: str | None,
        reason: str,
        message: str,
        *,
        stalling: bool = False,
        requeue_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.condition = condition
        self.reason = reason
        self.message = message
        self.stalling = stalling
        self.requeue_after = requeue_after


@dataclass
class Reconciliation(Generic[Spec]):
    """One run over one object: the object as read, its parsed spec, the status being built."""

    obj: dict[str, Any]
    spec: Spec
    status: dict[str, Any]
    conditions: Conditions
    started: float = field(default_factory=time.monotonic)
    # The status as last written to the server (patches are computed against it).
    written: dict[str, Any] = field(default_factory=dict)
    # A pending write of the progressing status (see `Reconciler.progress_soon`).
    progress_task: asyncio.Task[None] | None = None
    progress_writing: bool = False

    @property
    def name(self) -> str:
        return str(self.obj["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.obj["metadata"].get("namespace") or "")

    @property
    def generation(self) -> int:
        return int(self.obj["metadata"].get("generation") or 0)


class Reconciler(ABC, Generic[Spec]):
    """The shared lifecycle; subclasses give the kind, its conditions and its steps."""

    api_version: ClassVar[str]
    kind: ClassVar[str]
    # Conditions summarised into Ready, in priority order, and which of them are failures
    # when True (negative polarity) or when False (bipolar).
    summarize: ClassVar[tuple[str, ...]]
    negative: ClassVar[tuple[str, ...]]
    bipolar: ClassVar[tuple[str, ...]] = ()

    def __init__(
        self,
        client: kube.Client,
        informer: Informer,
        events: EventRecorder,
        *,
        field_manager: str,
        metrics: Metrics | None = None,
    ) -> None:
        self.client = client
        self.informer = informer
        self.events = events
        self.field_manager = field_manager
        self.duration = (
            metrics.histogram(
                "gotk_reconcile_duration_seconds",
                "The duration in seconds of a reconciliation.",
                ("kind", "name", "namespace"),
            )
            if metrics is not None
            else None
        )

    # -- what subclasses provide

    @abstractmethod
    def parse(self, obj: Mapping[str, Any]) -> Spec:
        """The typed spec; raises `StepError` (stalling) when the object is invalid."""

    @abstractmethod
    async def steps(self, run: Reconciliation[Spec]) -> None:
        """The kind's steps, in order; the first `StepError` ends the run."""

    @abstractmethod
    def interval(self, spec: Spec) -> float:
        """Seconds until the next run after a success."""

    async def finalize(self, obj: Mapping[str, Any]) -> None:
        """Clean up before the finalizer is removed from an object being deleted."""

    def suspended(self, obj: Mapping[str, Any]) -> bool:
        return bool((obj.get("spec") or {}).get("suspend"))

    async def notify(
        self, run: Reconciliation[Spec], before: Mapping[str, Any], error: StepError | None
    ) -> None:
        """Events for the outcome; the default reports failures as Warning events."""
        if error is not None:
            await self.events.record(run.obj, WARNING, error.reason, error.message)

    # -- the lifecycle

    async def __call__(self, request: Request) -> Result:
        cached = self.informer.get(str(request))
        if cached is None:
            return Result()  # deleted; its finalizer already ran
        obj = copy.deepcopy(cached)
        meta = obj["metadata"]
        if meta.get("deletionTimestamp"):
            if FINALIZER in (meta.get("finalizers") or []):
                await self.finalize(obj)
                await self._set_finalizer(obj, present=False)
            return Result()
        if FINALIZER not in (meta.get("finalizers") or []):
            obj = await self._set_finalizer(obj, present=True)
        if self.suspended(obj):
            log.info("reconciliation is suspended for this object")
            return Result()

        before = copy.deepcopy(obj.get("status") or {})
        status = copy.deepcopy(before)
        conditions = Conditions(status.get("conditions"), int(meta.get("generation") or 0))
        error: StepError | None = None
        spec: Spec | None = None
        try:
            spec = self.parse(obj)
        except StepError as exc:
            error = exc
        run: Reconciliation[Any] = Reconciliation(obj, spec, status, conditions)
        run.written = copy.deepcopy(before)
        if error is None:
            error = await self._run_steps(run)
        await self._settle_progress(run)
        succeeded = self._conclude(run, error)
        await self._patch_status(run)
        await self.notify(run, before, error)
        if self.duration is not None:
            self.duration.observe(
                time.monotonic() - run.started,
                kind=self.kind,
                name=run.name,
                namespace=run.namespace,
            )
        if error is not None and not error.stalling:
            if error.requeue_after is not None:
                return Result(requeue_after=error.requeue_after)
            raise error  # the runtime retries with backoff and logs it
        if succeeded and spec is not None:
            return Result(requeue_after=self.interval(spec))
        return Result()

    async def _run_steps(self, run: Reconciliation[Spec]) -> StepError | None:
        conditions, generation = run.conditions, run.generation
        observed = int(run.status.get("observedGeneration") or 0)
        requested = (run.obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        conditions.progressing("reconciliation in progress")
        if generation != observed:
            conditions.progressing(f"processing object: new generation {observed} -> {generation}")
        if generation != observed or (
            requested is not None and requested != run.status.get("lastHandledReconcileAt")
        ):
            self.progress_soon(run)
        try:
            await self.steps(run)
        except StepError as exc:
            return exc
        except kube.KubeError as exc:
            return StepError(None, FAILED, str(exc))
        return None

    def progress_soon(self, run: Reconciliation[Spec]) -> None:
        """Write the progressing status if the run is still going in `PROGRESS_DELAY` seconds.

        Users watching a slow reconcile see Reconciling=True with what is under way; a run
        that ends sooner writes only its outcome, sparing the API server a write per object.
        """
        if run.progress_task is not None:
            return

        async def later() -> None:
            await asyncio.sleep(PROGRESS_DELAY)
            run.progress_writing = True
            await self._patch_status(run)

        run.progress_task = asyncio.create_task(later())

    async def _settle_progress(self, run: Reconciliation[Spec]) -> None:
        """Cancel a progress write not yet begun; let one under way finish first."""
        task = run.progress_task
        if task is None:
            return
        if not run.progress_writing:
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError, kube.KubeError):
            await task

    def _conclude(self, run: Reconciliation[Spec], error: StepError | None) -> bool:
        """Flux's result computation: conditions for the error, Ready, observed generation."""
        conditions = run.conditions
        if error is not None and error.condition is not None:
            conditions.true(error.condition, error.reason, error.message)
        if error is None or error.stalling:
            # Done, or waiting for a change to the object: not in progress (kstatus).
            conditions.delete(RECONCILING)
        elif conditions.get(RECONCILING) is not None:
            reconciling = conditions.get(RECONCILING)
            assert reconciling is not None
            conditions.true(RECONCILING, PROGRESSING_WITH_RETRY, reconciling["message"])
        if error is not None and error.stalling:
            conditions.true(STALLED, error.reason, error.message)
        else:
            conditions.delete(STALLED)
        conditions.summarize(self.summarize, self.negative, self.bipolar)
        if error is not None and error.condition is None:
            conditions.false(READY, error.reason, error.message)
        status = run.status
        status["conditions"] = conditions.to_list()
        requested = (run.obj["metadata"].get("annotations") or {}).get(REQUESTED_AT)
        if requested is not None:
            status["lastHandledReconcileAt"] = requested
        if error is None or error.stalling:
            status["observedGeneration"] = run.generation
        return error is None

    async def _patch_status(self, run: Reconciliation[Spec]) -> None:
        """Write the status as it stands (its changes since the last write, as a merge patch)."""
        run.status["conditions"] = run.conditions.to_list()
        current = copy.deepcopy(run.status)
        patch = merge_patch(run.written, current)
        if not patch:
            return
        with contextlib.suppress(kube.NotFound):  # deleted meanwhile: nothing to report on
            await self.client.patch_status(run.obj, patch, field_manager=self.field_manager)
        run.written = current

    async def _set_finalizer(self, obj: dict[str, Any], *, present: bool) -> dict[str, Any]:
        meta = obj["metadata"]
        finalizers = [f for f in meta.get("finalizers") or [] if f != FINALIZER]
        if present:
            finalizers.append(FINALIZER)
        # The resourceVersion makes this a compare-and-swap: another writer's finalizers are
        # never lost (a conflict is retried with the object read again).
        patch = {"metadata": {"finalizers": finalizers, "resourceVersion": meta["resourceVersion"]}}
        try:
            updated = await self.client.patch(
                self.api_version,
                self.kind,
                meta["name"],
                patch,
                meta.get("namespace"),
                field_manager=self.field_manager,
            )
        except kube.NotFound:
            return obj
        obj["metadata"] = updated["metadata"]
        return obj


def invalid(message: str) -> StepError:
    """An object the controller cannot act on until it changes."""
    return StepError(None, INVALID, message, stalling=True)


def merge_patch(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON merge patch (RFC 7386) that turns `before` into `after`."""
    patch: dict[str, Any] = {}
    for key in before:
        if key not in after:
            patch[key] = None
    for key, value in after.items():
        old = before.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            nested = merge_patch(old, value)
            if nested:
                patch[key] = nested
        elif key not in before or old != value:
            patch[key] = copy.deepcopy(value)
    return patch

"""Controllers: informer events in, a work queue in the middle, workers calling a reconcile."""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable

from tidegate.kube import Object

from ._informer import DELETED, RESYNC, Informer
from ._logging import log_context
from ._metrics import CounterChild, GaugeChild, HistogramChild, Metrics
from ._predicates import Predicate
from ._queue import ShutDown, WorkQueue
from ._request import Request, Result

log = logging.getLogger(__name__)

Reconcile = Callable[[Request], Awaitable[Result]]
MapFunction = Callable[[Object], Iterable[Request]]

SUCCESS, ERROR, REQUEUE_AFTER = "success", "error", "requeue_after"

# controller-runtime's buckets for controller_runtime_reconcile_time_seconds.
RECONCILE_TIME_BUCKETS = (
    *(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5),
    *(0.6, 0.7, 0.8, 0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0),
    *(6.0, 7.0, 8.0, 9.0, 10.0, 15.0, 20.0, 25.0, 30.0, 40.0, 50.0, 60.0),
)


class Controller:
    """Calls `reconcile(request)` for objects of the informer's kind whenever they change.

    Level-triggered, as in controller-runtime: events only say *which* object to look at;
    the reconciler reads the current state from the cache. A key is never reconciled twice
    at once. An exception retries the key with exponential backoff; `Result.requeue_after`
    reconciles it again after that many seconds (plus a little jitter).

    The informers must be running (see `InformerSet.run`); `run()` waits for them to sync.
    """

    def __init__(
        self,
        name: str,
        informer: Informer,
        reconcile: Reconcile,
        *,
        workers: int = 4,
        predicate: Predicate | None = None,
        metrics: Metrics | None = None,
        jitter: float = 0.05,
        base_delay: float = 0.75,
        max_delay: float = 900.0,
        grace: float = 30.0,
    ) -> None:
        if workers < 1:
            raise ValueError("a controller needs at least one worker")
        self.name = name
        self.informer = informer
        self.workers = workers
        self.jitter = jitter
        self.grace = grace
        self.queue: WorkQueue[Request] = WorkQueue(
            name, base_delay=base_delay, max_delay=max_delay, metrics=metrics
        )
        self._reconcile = reconcile
        self._predicate = predicate
        self._informers = [informer]
        self._stopping = False
        self._instrument(metrics)
        informer.add_handler(self._on_event)

    def _instrument(self, metrics: Metrics | None) -> None:
        self._results = {result: CounterChild() for result in (SUCCESS, ERROR, REQUEUE_AFTER)}
        self._errors = CounterChild()
        self._time = HistogramChild(RECONCILE_TIME_BUCKETS)
        self._active = GaugeChild()
        self._max_workers = GaugeChild()
        if metrics is None:
            return
        total = metrics.counter(
            "controller_runtime_reconcile_total",
            "Total number of reconciliations per controller",
            ("controller", "result"),
        )
        # Series start at zero, so rates work from the first scrape.
        self._results = {r: total.labels(self.name, r) for r in (SUCCESS, ERROR, REQUEUE_AFTER)}
        self._errors = metrics.counter(
            "controller_runtime_reconcile_errors_total",
            "Total number of reconciliation errors per controller",
            ("controller",),
        ).labels(self.name)
        self._time = metrics.histogram(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            ("controller",),
            RECONCILE_TIME_BUCKETS,
        ).labels(self.name)
        self._active = metrics.gauge(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            ("controller",),
        ).labels(self.name)
        self._max_workers = metrics.gauge(
            "controller_runtime_max_concurrent_reconciles",
            "Maximum number of concurrent reconciles per controller",
            ("controller",),
        ).labels(self.name)

    # -- sources of work --------------------------------------------------------------------

    def watch(
        self,
        informer: Informer,
        map_fn: MapFunction,
        *,
        predicate: Predicate | None = None,
    ) -> None:
        """Also reconcile the requests `map_fn(obj)` names when an object of another kind
        changes (for DELETED, `obj` is its last known state)."""

        def handler(event_type: str, old: Object | None, new: Object | None) -> None:
            if not self._passes(event_type, old, new, predicate):
                return
            obj = new if new is not None else old
            if obj is None:
                return
            for request in map_fn(obj):
                self.queue.add(request)

        self._informers.append(informer)
        informer.add_handler(handler)

    def enqueue(self, request: Request, after: float | None = None) -> None:
        """Reconcile `request` now, or after `after` seconds."""
        if after:
            self.queue.add_after(request, after)
        else:
            self.queue.add(request)

    def _on_event(self, event_type: str, old: Object | None, new: Object | None) -> None:
        if not self._passes(event_type, old, new, self._predicate):
            return
        obj = new if new is not None else old
        if obj is not None:
            self.queue.add(Request.of(obj))

    @staticmethod
    def _passes(
        event_type: str, old: Object | None, new: Object | None, predicate: Predicate | None
    ) -> bool:
        if predicate is None or event_type in (DELETED, RESYNC):
            return True
        try:
            return predicate(old, new)
        except Exception:
            log.exception("predicate failed; enqueueing the change")
            return True

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Wait for the informers to sync, then reconcile with `workers` workers until cancelled.

        On cancellation no new work is taken; reconciles in flight get `grace` seconds to
        finish before they are cancelled.
        """
        await asyncio.gather(*(informer.wait_synced() for informer in self._informers))
        self._stopping = False
        self._max_workers.set(self.workers)
        log.info("starting workers", extra={"controller": self.name, "workers": self.workers})
        workers = [
            asyncio.create_task(self._work(), name=f"{self.name}-worker-{i}")
            for i in range(self.workers)
        ]
        try:
            # asyncio.wait, unlike gather, leaves the workers running when this is cancelled.
            done, _ = await asyncio.wait(workers, return_when=asyncio.FIRST_EXCEPTION)
            for worker in done:
                worker.result()
        finally:
            await self._stop(workers)

    async def _stop(self, workers: list[asyncio.Task[None]]) -> None:
        self._stopping = True
        self.queue.shutdown()
        busy = [worker for worker in workers if not worker.done()]
        try:
            if busy:
                log.info(
                    "stopping: waiting for reconciles in flight",
                    extra={"controller": self.name, "grace": self.grace},
                )
                _, late = await asyncio.wait(busy, timeout=self.grace)
                if late:
                    log.warning(
                        "grace period over: cancelling %d reconciles",
                        len(late),
                        extra={"controller": self.name},
                    )
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            self._active.set(0)
        log.info("workers stopped", extra={"controller": self.name})

    async def _work(self) -> None:
        while not self._stopping:
            try:
                request = await self.queue.get()
            except ShutDown:
                return
            try:
                if not self._stopping:
                    await self._process(request)
            finally:
                self.queue.done(request)

    async def _process(self, request: Request) -> None:
        with log_context(
            controller=self.name,
            controllerKind=self.informer.kind,
            name=request.name,
            namespace=request.namespace or "",
            reconcileID=str(uuid.uuid4()),
        ):
            self._active.inc()
            started = time.monotonic()
            try:
                result = await self._reconcile(request)
            except Exception as exc:
                self._errors.inc()
                self._results[ERROR].inc()
                log.error("Reconciler error", exc_info=exc)
                self.queue.add_rate_limited(request)
                return
            finally:
                self._time.observe(time.monotonic() - started)
                self._active.dec()
            self.queue.forget(request)
            if result.requeue_after is not None:
                self._results[REQUEUE_AFTER].inc()
                delay = result.requeue_after * (1 + random.uniform(0, self.jitter))
                self.queue.add_after(request, delay)
            else:
                self._results[SUCCESS].inc()

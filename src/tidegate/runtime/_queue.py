"""A rate-limited, delaying work queue with client-go's guarantees, on asyncio.

- a key waits in the queue at most once, however often it is added;
- a key is never handed out while a worker processes it: added meanwhile, it is marked dirty
  and queued again when the worker calls `done`;
- `add_after` delays an add (the earliest pending time wins); `add_rate_limited` delays it by a
  per-key exponential backoff that `forget` resets.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from ._metrics import CounterChild, GaugeChild, HistogramChild, Metrics, exponential_buckets

KeyT = TypeVar("KeyT", bound=Hashable)

# client-go's workqueue latency buckets: 10ns to 1000s, a factor of ten apart.
_LATENCY_BUCKETS = exponential_buckets(10e-9, 10, 12)


class ShutDown(Exception):
    """The queue was shut down and holds no more keys."""


class WorkQueue(Generic[KeyT]):
    """Keys waiting to be processed, handed out to workers one at a time per key."""

    def __init__(
        self,
        name: str,
        *,
        base_delay: float = 0.75,
        max_delay: float = 900.0,
        metrics: Metrics | None = None,
    ) -> None:
        if base_delay <= 0 or max_delay < base_delay:
            raise ValueError("work queue backoff needs 0 < base_delay <= max_delay")
        self.name = name
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._queue: deque[KeyT] = deque()
        self._dirty: set[KeyT] = set()
        self._processing: set[KeyT] = set()
        self._waiting: dict[KeyT, tuple[float, asyncio.TimerHandle]] = {}
        self._failures: dict[KeyT, int] = {}
        self._getters: deque[asyncio.Future[None]] = deque()
        self._queued_at: dict[KeyT, float] = {}
        self._started_at: dict[KeyT, float] = {}
        self._shutting_down = False
        self._instrument(metrics)

    def _instrument(self, metrics: Metrics | None) -> None:
        self._depth = GaugeChild()
        self._adds = CounterChild()
        self._retries = CounterChild()
        self._latency = HistogramChild(_LATENCY_BUCKETS)
        self._work_duration = HistogramChild(_LATENCY_BUCKETS)
        self._unfinished = GaugeChild()
        self._longest = GaugeChild()
        if metrics is None:
            return
        # controller-runtime labels workqueue series with both `name` and `controller`.
        labels = ("name", "controller")
        values = (self.name, self.name)
        self._depth = metrics.gauge("workqueue_depth", "Current depth of workqueue", labels).labels(
            *values
        )
        self._adds = metrics.counter(
            "workqueue_adds_total", "Total number of adds handled by workqueue", labels
        ).labels(*values)
        self._retries = metrics.counter(
            "workqueue_retries_total", "Total number of retries handled by workqueue", labels
        ).labels(*values)
        self._latency = metrics.histogram(
            "workqueue_queue_duration_seconds",
            "How long in seconds an item stays in workqueue before being requested",
            labels,
            _LATENCY_BUCKETS,
        ).labels(*values)
        self._work_duration = metrics.histogram(
            "workqueue_work_duration_seconds",
            "How long in seconds processing an item from workqueue takes",
            labels,
            _LATENCY_BUCKETS,
        ).labels(*values)
        self._unfinished = metrics.gauge(
            "workqueue_unfinished_work_seconds",
            "How many seconds of work has been done that is in progress and has not been "
            "observed by work_duration",
            labels,
        ).labels(*values)
        self._longest = metrics.gauge(
            "workqueue_longest_running_processor_seconds",
            "How many seconds has the longest running processor for workqueue been running",
            labels,
        ).labels(*values)
        metrics.on_collect(self._collect)

    def _collect(self) -> None:
        now = time.monotonic()
        running = [now - started for started in self._started_at.values()]
        self._unfinished.set(sum(running))
        self._longest.set(max(running, default=0.0))

    # -- adding -----------------------------------------------------------------------------

    def add(self, key: KeyT) -> None:
        """Queue `key` unless it already waits; if it is being processed, queue it after `done`."""
        if self._shutting_down or key in self._dirty:
            return
        self._adds.inc()
        self._dirty.add(key)
        if key in self._processing:
            return
        self._push(key)

    def add_after(self, key: KeyT, delay: float) -> None:
        """Add `key` once `delay` seconds have passed (an earlier pending add of it wins)."""
        if self._shutting_down:
            return
        if delay <= 0:
            self.add(key)
            return
        loop = asyncio.get_running_loop()
        ready = loop.time() + delay
        pending = self._waiting.get(key)
        if pending is not None:
            if pending[0] <= ready:
                return
            pending[1].cancel()
        self._waiting[key] = (ready, loop.call_at(ready, self._ready, key))

    def add_rate_limited(self, key: KeyT) -> None:
        """Add `key` after its backoff: base_delay * 2^(failures so far), capped at max_delay."""
        failures = self._failures.get(key, 0)
        self._failures[key] = failures + 1
        self._retries.inc()
        self.add_after(key, self.backoff(failures))

    def backoff(self, failures: int) -> float:
        """The delay after `failures` earlier failures."""
        if failures >= 64:
            return self.max_delay
        return float(min(self.base_delay * 2**failures, self.max_delay))

    def forget(self, key: KeyT) -> None:
        """Reset the key's backoff (after it was processed successfully)."""
        self._failures.pop(key, None)

    def num_requeues(self, key: KeyT) -> int:
        """How many times the key was added rate-limited since it was last forgotten."""
        return self._failures.get(key, 0)

    # -- taking -----------------------------------------------------------------------------

    async def get(self) -> KeyT:
        """Wait for a key and mark it as being processed; the caller must call `done(key)`.

        Keys still queued at shutdown are handed out; after that, `ShutDown` is raised.
        """
        while not self._queue:
            if self._shutting_down:
                raise ShutDown(self.name)
            getter = asyncio.get_running_loop().create_future()
            self._getters.append(getter)
            try:
                await getter
            except BaseException:
                getter.cancel()
                with contextlib.suppress(ValueError):
                    self._getters.remove(getter)
                # This waiter may have been woken for a key it will not take: pass it on.
                if self._queue and not getter.cancelled():
                    self._wake_one()
                raise
        key = self._queue.popleft()
        self._depth.dec()
        now = time.monotonic()
        self._latency.observe(now - self._queued_at.pop(key, now))
        self._started_at[key] = now
        self._processing.add(key)
        self._dirty.discard(key)
        return key

    def done(self, key: KeyT) -> None:
        """Processing of `key` ended; queue it again if it was added meanwhile."""
        self._processing.discard(key)
        started = self._started_at.pop(key, None)
        if started is not None:
            self._work_duration.observe(time.monotonic() - started)
        if key in self._dirty:
            self._push(key)

    def shutdown(self) -> None:
        """Refuse new keys, drop delayed ones, and wake idle getters (they raise `ShutDown`
        once the queue is empty)."""
        self._shutting_down = True
        for _, handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)

    @property
    def shutting_down(self) -> bool:
        return self._shutting_down

    def __len__(self) -> int:
        return len(self._queue)

    def len(self) -> int:
        """How many keys wait to be handed out (not counting delayed ones)."""
        return len(self._queue)

    # -- internals --------------------------------------------------------------------------

    def _ready(self, key: KeyT) -> None:
        self._waiting.pop(key, None)
        self.add(key)

    def _push(self, key: KeyT) -> None:
        self._queue.append(key)
        self._queued_at[key] = time.monotonic()
        self._depth.inc()
        self._wake_one()

    def _wake_one(self) -> None:
        while self._getters:
            getter = self._getters.popleft()
            if not getter.done():
                getter.set_result(None)
                return

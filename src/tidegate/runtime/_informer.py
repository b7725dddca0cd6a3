"""Informers: a watched, cached view of one kind, with change handlers.

The counterpart of client-go's shared informer. An `Informer` follows a `kube.Watcher`, keeps
what it saw in a read cache that reconcilers read instead of the API server, and tells its
handlers about every change (and, on a resync period, about every cached object again).
`InformerSet` hands out one informer per kind, so controllers share caches and watches.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterator
from typing import Any

from tidegate.kube import Client, Object, Watcher, object_key

from ._request import Request

log = logging.getLogger(__name__)

ADDED, MODIFIED, DELETED, RESYNC = "ADDED", "MODIFIED", "DELETED", "RESYNC"

Handler = Callable[[str, Object | None, Object | None], None]
"""Called as `handler(event_type, old, new)`: ADDED (old None), MODIFIED, DELETED (new None,
old the last state seen) or RESYNC (old is new)."""

# How often the informer looks whether its watcher has read the first list.
_SYNC_POLL = 0.02


class Informer:
    """A cache of one kind's objects (optionally one namespace / label selector), kept current
    by list-then-watch, with handlers called on every change.

    Cached objects are shared, not copied: treat them as read-only.
    """

    def __init__(
        self,
        client: Client,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
        resync: float | None = None,
    ) -> None:
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.resync = resync
        self._cache: dict[str, Object] = {}
        self._handlers: list[Handler] = []
        self._synced = asyncio.Event()
        self._running = False

    # -- reading ----------------------------------------------------------------------------

    def get(self, key: str | Request) -> Object | None:
        """The cached object for `namespace/name` (or `name` if cluster-scoped), or None."""
        return self._cache.get(str(key))

    def list(self, namespace: str | None = None) -> list[Object]:
        """Cached objects, all or those of one namespace."""
        if namespace is None:
            return list(self._cache.values())
        return [
            obj
            for obj in self._cache.values()
            if obj.get("metadata", {}).get("namespace") == namespace
        ]

    @property
    def synced(self) -> bool:
        """True once the first list is in the cache and its objects went to the handlers."""
        return self._synced.is_set()

    async def wait_synced(self) -> None:
        await self._synced.wait()

    # -- handlers ---------------------------------------------------------------------------

    def add_handler(self, handler: Handler) -> None:
        """Call `handler` on every change; objects already cached are reported to it as ADDED
        at once, so a handler added late misses nothing."""
        self._handlers.append(handler)
        for obj in list(self._cache.values()):
            self._call(handler, ADDED, None, obj)

    # -- running ----------------------------------------------------------------------------

    async def run(self) -> None:
        """Follow the kind until cancelled (API errors are logged and retried)."""
        if self._running:
            raise RuntimeError(f"informer for {self.kind} is already running")
        self._running = True
        watcher = Watcher(
            self.client,
            self.api_version,
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            # After a restart, list only to learn what changed while stopped.
            known=self._cache,
        )
        tasks = [
            asyncio.create_task(self._follow(watcher)),
            asyncio.create_task(self._sync(watcher)),
        ]
        if self.resync:
            tasks.append(asyncio.create_task(self._resync(self.resync)))
        try:
            await asyncio.gather(*tasks)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._running = False

    async def _follow(self, watcher: Watcher) -> None:
        failures = 0
        while True:
            try:
                async for event in watcher.events():
                    failures = 0
                    self._apply(event.type, event.object)
            except Exception as exc:
                # The watcher retries connection losses itself; this is what it does not:
                # a kind not (yet) installed, RBAC refusing the list, a bad selector. A cache
                # that stops following its kind would go stale silently, so never give up.
                failures += 1
                delay = min(30.0, 0.5 * 2 ** min(failures, 6)) * random.uniform(0.8, 1.2)
                log.error(
                    "failed to watch %s: %s; retrying in %.1fs",
                    self.kind,
                    exc,
                    delay,
                    extra={"kind": self.kind, "error": str(exc)},
                )
                await asyncio.sleep(delay)

    async def _sync(self, watcher: Watcher) -> None:
        # The watcher marks itself synced once the first list is read, then hands out that
        # list's events without suspending; seen from another task, "synced" therefore means
        # they all reached the cache and the handlers.
        while not watcher.synced:  # noqa: ASYNC110 - the watcher offers a flag, not an event
            await asyncio.sleep(_SYNC_POLL)
        self._synced.set()

    async def _resync(self, period: float) -> None:
        await self._synced.wait()
        while True:
            await asyncio.sleep(period)
            for obj in list(self._cache.values()):
                self._notify(RESYNC, obj, obj)

    def _apply(self, event_type: str, obj: Object) -> None:
        key = object_key(obj)
        if event_type == DELETED:
            self._notify(DELETED, self._cache.pop(key, obj), None)
            return
        old = self._cache.get(key)
        self._cache[key] = obj
        self._notify(ADDED if old is None else MODIFIED, old, obj)

    def _notify(self, event_type: str, old: Object | None, new: Object | None) -> None:
        for handler in list(self._handlers):
            self._call(handler, event_type, old, new)

    def _call(
        self, handler: Handler, event_type: str, old: Object | None, new: Object | None
    ) -> None:
        try:
            handler(event_type, old, new)
        except Exception:
            log.exception("%s handler failed on %s", self.kind, event_type)


class InformerSet:
    """One shared informer per kind, run together.

    `informer()` may be called before or while `run()` runs; informers added later start at
    once."""

    def __init__(self, client: Client, *, resync: float | None = None) -> None:
        self.client = client
        self.resync = resync
        self._informers: dict[tuple[Any, ...], Informer] = {}
        self._added = asyncio.Event()

    def informer(
        self,
        api_version: str,
        kind: str,
        *,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> Informer:
        key = (api_version, kind, namespace, label_selector)
        informer = self._informers.get(key)
        if informer is None:
            informer = Informer(
                self.client,
                api_version,
                kind,
                namespace=namespace,
                label_selector=label_selector,
                resync=self.resync,
            )
            self._informers[key] = informer
            self._added.set()
        return informer

    def __iter__(self) -> Iterator[Informer]:
        return iter(list(self._informers.values()))

    @property
    def synced(self) -> bool:
        return all(informer.synced for informer in self._informers.values())

    async def wait_synced(self) -> None:
        """Wait until every informer handed out so far has synced."""
        await asyncio.gather(*(i.wait_synced() for i in list(self._informers.values())))

    async def run(self) -> None:
        """Run every informer, including ones added later, until cancelled."""
        running: dict[Informer, asyncio.Task[None]] = {}
        try:
            while True:
                self._added.clear()
                for informer in list(self._informers.values()):
                    if informer not in running:
                        running[informer] = asyncio.create_task(informer.run())
                added = asyncio.create_task(self._added.wait())
                try:
                    done, _ = await asyncio.wait(
                        [added, *running.values()], return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    added.cancel()
                for task in done:
                    if task is not added:
                        # Informers only end by failing: stop the others and report it.
                        task.result()
                        raise RuntimeError("an informer stopped unexpectedly")
        finally:
            for task in running.values():
                task.cancel()
            await asyncio.gather(*running.values(), return_exceptions=True)

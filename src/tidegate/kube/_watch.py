"""List-then-watch that survives disconnects and expired resource versions.

The counterpart of client-go's reflector."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator, Mapping
from typing import Any

from ._client import Client, Impersonation, Object, WatchEvent, object_key
from ._errors import ApiError, ConnectionFailed, Gone, ServerError, TooManyRequests

log = logging.getLogger(__name__)

ADDED, MODIFIED, DELETED, BOOKMARK = "ADDED", "MODIFIED", "DELETED", "BOOKMARK"


class Watcher:
    """Keeps `known` (key → object) equal to the server's objects and yields every change.

    It lists first (reporting each object as ADDED), then watches from the list's
    resourceVersion with bookmarks, so a reconnect resumes where it left off. When the server
    answers 410 Gone (the resourceVersion was compacted away), it lists again and reports the
    difference with what it knew — ADDED, MODIFIED, DELETED — so nothing that changed in the
    gap is lost. Connection failures and 429/5xx answers are retried with capped backoff.

    `synced` turns true once the first list has been read into `known`. To resume from an
    earlier state, pass `known` and `resource_version`, or iterate `events()` again.
    """

    def __init__(
        self,
        client: Client,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        known: Mapping[str, Object] | None = None,
        resource_version: str | None = None,
        impersonate: Impersonation | None = None,
        max_backoff: float = 30.0,
    ) -> None:
        self.client = client
        self.api_version = api_version
        self.kind = kind
        self.namespace = namespace
        self.label_selector = label_selector
        self.field_selector = field_selector
        self.impersonate = impersonate
        self.known: dict[str, Object] = dict(known or {})
        self.resource_version = resource_version
        self.relists = 0
        self.synced = False
        self._max_backoff = max_backoff

    async def events(self) -> AsyncIterator[WatchEvent]:
        """Yield changes forever (until the consumer stops iterating)."""
        failures = 0
        while True:
            try:
                if self.resource_version is None:
                    changes = await self._relist()
                    self.synced = True
                    for event in changes:
                        yield event
                async for event in self._watch_once():
                    failures = 0
                    yield event
            except Gone as exc:
                log.info("%s: %s; re-listing", self._what(), exc)
                self.resource_version = None
                self.relists += 1
            except (ConnectionFailed, ServerError, TooManyRequests) as exc:
                failures += 1
                delay = min(self._max_backoff, 0.5 * 2 ** min(failures, 10))
                delay *= random.uniform(0.8, 1.2)
                log.info("%s: %s; retrying in %.1fs", self._what(), exc, delay)
                await asyncio.sleep(delay)

    async def _relist(self) -> list[WatchEvent]:
        listed = await self.client.list(
            self.api_version,
            self.kind,
            self.namespace,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            impersonate=self.impersonate,
        )
        current = {object_key(item): item for item in listed["items"]}
        events: list[WatchEvent] = []
        for key, item in current.items():
            before = self.known.get(key)
            if before is None:
                events.append(WatchEvent(ADDED, item))
            elif _rv(before) != _rv(item):
                events.append(WatchEvent(MODIFIED, item))
        events += [
            WatchEvent(DELETED, obj) for key, obj in self.known.items() if key not in current
        ]
        self.known = current
        self.resource_version = str(listed["metadata"].get("resourceVersion", ""))
        return events

    async def _watch_once(self) -> AsyncIterator[WatchEvent]:
        # Ask the server to end the stream after 5-10 minutes, as client-go does, so that a
        # silently broken connection cannot stall the watch forever.
        stream = self.client.watch(
            self.api_version,
            self.kind,
            self.namespace,
            resource_version=self.resource_version,
            label_selector=self.label_selector,
            field_selector=self.field_selector,
            timeout_seconds=random.randint(300, 600),
            allow_bookmarks=True,
            impersonate=self.impersonate,
        )
        async for event in stream:
            if event.resource_version:
                self.resource_version = event.resource_version
            if event.type == BOOKMARK:
                continue
            key = object_key(event.object)
            if event.type == DELETED:
                self.known.pop(key, None)
            elif event.type in (ADDED, MODIFIED):
                self.known[key] = event.object
            else:
                raise ApiError(500, "UnknownEvent", f"unexpected watch event {event.type!r}")
            yield event

    def _what(self) -> str:
        where = f" in {self.namespace}" if self.namespace else ""
        return f"watch {self.kind}{where}"


def _rv(obj: Mapping[str, Any]) -> str:
    return str(obj.get("metadata", {}).get("resourceVersion", ""))

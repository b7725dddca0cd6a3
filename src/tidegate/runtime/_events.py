"""Kubernetes Events about objects, aggregated the way client-go's recorder does."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tidegate.kube import Client, KubeError, NotFound, Object

log = logging.getLogger(__name__)

NORMAL, WARNING = "Normal", "Warning"
MAX_MESSAGE_LENGTH = 1024
# Identical events within this window update one Event (count, lastTimestamp).
AGGREGATION_WINDOW = 600.0
_CACHE_SIZE = 4096  # as client-go's event cache


@dataclass
class _Seen:
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    name: str | None = None
    namespace: str = ""
    count: int = 0
    last: float = 0.0


class EventRecorder:
    """Records core/v1 Events about objects, as `component` (the Event's source and
    reporting component) on `host` (the reporting instance; this machine's name by default).

    Repeating an event (same object uid, type, reason and message) within ten minutes bumps the
    existing Event's count and lastTimestamp instead of creating another one.
    """

    def __init__(self, client: Client, component: str, *, host: str | None = None) -> None:
        self.client = client
        self.component = component
        self.host = host if host is not None else socket.gethostname()
        self._seen: OrderedDict[tuple[str, ...], _Seen] = OrderedDict()

    async def record(
        self,
        obj: Mapping[str, Any],
        type: str,
        reason: str,
        message: str,
        *,
        annotations: Mapping[str, str] | None = None,
        action: str | None = None,
    ) -> None:
        """Record an event about `obj` (`type` Normal or Warning). Failures are logged, never
        raised: an event is worth less than the reconcile that emits it."""
        try:
            await self._record(obj, type, reason, message, annotations, action)
        except (KubeError, ValueError) as exc:
            meta = obj.get("metadata") or {}
            log.error(
                "failed to record event %s for %s '%s': %s",
                reason,
                obj.get("kind"),
                meta.get("name"),
                exc,
                extra={"reason": reason},
            )

    async def _record(
        self,
        obj: Mapping[str, Any],
        type: str,
        reason: str,
        message: str,
        annotations: Mapping[str, str] | None,
        action: str | None,
    ) -> None:
        if type not in (NORMAL, WARNING):
            raise ValueError(f"event type must be {NORMAL} or {WARNING}, not {type!r}")
        meta = obj.get("metadata") or {}
        if len(message) > MAX_MESSAGE_LENGTH:
            message = message[: MAX_MESSAGE_LENGTH - 3] + "..."
        involved = {
            "apiVersion": obj.get("apiVersion"),
            "kind": obj.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
            "resourceVersion": meta.get("resourceVersion"),
        }
        involved = {k: v for k, v in involved.items() if v}
        identity = meta.get("uid") or "{apiVersion}/{kind}/{namespace}/{name}".format_map(
            {k: involved.get(k, "") for k in ("apiVersion", "kind", "namespace", "name")}
        )
        seen = self._entry((str(identity), type, reason, message))
        async with seen.lock:
            now = _timestamp()
            if seen.name and time.monotonic() - seen.last < AGGREGATION_WINDOW:
                try:
                    await self.client.patch(
                        "v1",
                        "Event",
                        seen.name,
                        {"count": seen.count + 1, "lastTimestamp": now},
                        seen.namespace,
                    )
                except NotFound:
                    pass  # the API server let it expire (events live an hour): create anew
                else:
                    seen.count += 1
                    seen.last = time.monotonic()
                    return
            namespace = str(meta.get("namespace") or "default")
            event: Object = {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {
                    # client-go's naming: the object's name and the time in hex nanoseconds.
                    "name": f"{meta.get('name')}.{time.time_ns():x}",
                    "namespace": namespace,
                },
                "involvedObject": involved,
                "type": type,
                "reason": reason,
                "message": message,
                "source": {"component": self.component, "host": self.host},
                "reportingComponent": self.component,
                "reportingInstance": self.host,
                "firstTimestamp": now,
                "lastTimestamp": now,
                "count": 1,
            }
            if annotations:
                event["metadata"]["annotations"] = dict(annotations)
            if action:
                event["action"] = action
            created = await self.client.create(event)
            seen.name = created["metadata"]["name"]
            seen.namespace = namespace
            seen.count = 1
            seen.last = time.monotonic()

    def _entry(self, key: tuple[str, ...]) -> _Seen:
        seen = self._seen.get(key)
        if seen is None:
            seen = self._seen[key] = _Seen()
            while len(self._seen) > _CACHE_SIZE:
                self._seen.popitem(last=False)
        else:
            self._seen.move_to_end(key)
        return seen


def _timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

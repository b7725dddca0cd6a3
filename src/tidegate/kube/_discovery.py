"""Discovery and REST mapping: from apiVersion + kind to the URL path of a resource."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from ._errors import NoKindMatch, NotFound


@dataclass(frozen=True)
class APIResource:
    """One resource kind as discovery describes it."""

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    verbs: frozenset[str]
    subresources: frozenset[str]

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The request path for the collection, or for one object (and its subresource)."""
        base = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            base += f"/namespaces/{quote(namespace, safe='')}"
        base += f"/{self.plural}"
        if name is not None:
            base += f"/{quote(name, safe='')}"
            if subresource:
                base += f"/{subresource}"
        return base


def group_version_path(api_version: str) -> str:
    """`v1` → `/api/v1`; `apps/v1` → `/apis/apps/v1`."""
    return f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"


Fetch = Callable[[str], Awaitable[dict[str, Any]]]


class RESTMapper:
    """Maps (apiVersion, kind) to an `APIResource`, reading discovery lazily.

    Each group/version is fetched the first time it is needed and cached. A kind that is not in
    the cache makes the mapper fetch its group/version again once, so CRDs installed while the
    process runs become usable without a restart (as controller-runtime's lazy mapper does).
    """

    def __init__(self, fetch: Fetch) -> None:
        self._fetch = fetch
        self._cache: dict[str, dict[str, APIResource]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def resource_for(self, api_version: str, kind: str) -> APIResource:
        cached = self._cache.get(api_version)
        if cached is not None and kind in cached:
            return cached[kind]
        async with self._locks.setdefault(api_version, asyncio.Lock()):
            # Another task may have refreshed the group/version while this one waited.
            cached = self._cache.get(api_version)
            if cached is None or kind not in cached:
                cached = await self._refresh(api_version)
        if kind not in cached:
            raise NoKindMatch(api_version, kind)
        return cached[kind]

    def invalidate(self, api_version: str | None = None) -> None:
        """Forget cached discovery for one group/version, or for all."""
        if api_version is None:
            self._cache.clear()
        else:
            self._cache.pop(api_version, None)

    async def _refresh(self, api_version: str) -> dict[str, APIResource]:
        try:
            doc = await self._fetch(group_version_path(api_version))
        except NotFound:
            self._cache[api_version] = {}
            return {}
        group, _, version = api_version.rpartition("/")
        kinds: dict[str, APIResource] = {}
        subresources: dict[str, set[str]] = {}
        for entry in doc.get("resources", []):
            name = str(entry.get("name", ""))
            if "/" in name:
                parent, _, sub = name.partition("/")
                subresources.setdefault(parent, set()).add(sub)
                continue
            kinds.setdefault(
                str(entry["kind"]),
                APIResource(
                    group=group,
                    version=version,
                    kind=str(entry["kind"]),
                    plural=name,
                    namespaced=bool(entry.get("namespaced")),
                    verbs=frozenset(entry.get("verbs", [])),
                    subresources=frozenset(),
                ),
            )
        mapping = {
            kind: APIResource(
                res.group,
                res.version,
                res.kind,
                res.plural,
                res.namespaced,
                res.verbs,
                frozenset(subresources.get(res.plural, ())),
            )
            for kind, res in kinds.items()
        }
        self._cache[api_version] = mapping
        return mapping

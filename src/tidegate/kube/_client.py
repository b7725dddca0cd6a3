"""An async Kubernetes client for objects of any kind, as plain dicts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, cast
from urllib.parse import urlencode

import aiohttp
from kubernetes_asyncio.client import ApiClient
from multidict import CIMultiDict

from tidegate import __version__

from ._config import ClusterConfig, load_config
from ._discovery import APIResource, RESTMapper
from ._errors import ConnectionFailed, KubeError, Unauthorized, api_error
from ._ratelimit import TokenBucket

JSON = "application/json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = {
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
    "strategic": "application/strategic-merge-patch+json",
}
PatchType = Literal["merge", "json", "strategic"]
PropagationPolicy = Literal["Background", "Foreground", "Orphan"]
Object = dict[str, Any]


@dataclass(frozen=True)
class Impersonation:
    """Act as another user for one call (`Impersonate-User` / `Impersonate-Group` headers)."""

    user: str
    groups: tuple[str, ...] = ()
    uid: str | None = None

    @classmethod
    def service_account(cls, namespace: str, name: str) -> Impersonation:
        """Impersonate a ServiceAccount, as Flux does for `spec.serviceAccountName`.

        Only the user name is sent; the API server adds the ServiceAccount's groups
        (`system:serviceaccounts`, `system:serviceaccounts:<namespace>`) itself.
        """
        return cls(user=f"system:serviceaccount:{namespace}:{name}")

    def headers(self) -> list[tuple[str, str]]:
        pairs = [("Impersonate-User", self.user)]
        pairs += [("Impersonate-Group", group) for group in self.groups]
        if self.uid:
            pairs.append(("Impersonate-Uid", self.uid))
        return pairs


@dataclass(frozen=True)
class WatchEvent:
    """One event of a watch stream: ADDED, MODIFIED, DELETED or BOOKMARK, and the object."""

    type: str
    object: Object

    @property
    def resource_version(self) -> str:
        return str(self.object.get("metadata", {}).get("resourceVersion", ""))


def object_key(obj: Mapping[str, Any]) -> str:
    """`namespace/name` (or `name` for cluster-scoped objects), as client-go's cache keys."""
    meta = obj.get("metadata", {})
    namespace = meta.get("namespace")
    return f"{namespace}/{meta.get('name')}" if namespace else str(meta.get("name"))


class Client:
    """Talks to one API server: discovery, CRUD, server-side apply and watch, for any kind.

    Objects are plain dicts in the shape the API server sends. Every request passes the
    client-side rate limiter; any call can impersonate another user or a ServiceAccount.
    """

    def __init__(
        self,
        config: ClusterConfig,
        *,
        qps: float = 50.0,
        burst: int = 100,
        timeout: float = 30.0,
    ) -> None:
        self.config = config
        self.timeout = timeout
        self.qps, self.burst = qps, burst
        # One bucket per API resource, as client-go has one per REST client (and
        # controller-runtime one REST client per kind): a flood of Events never starves
        # the writes of the objects being reconciled, and vice versa.
        self.limiters: dict[str, TokenBucket] = {}
        self.mapper = RESTMapper(self._get_json)
        # kubernetes_asyncio builds the TLS context (CA, client certs, verify settings) and the
        # connection pool from the loaded configuration; requests are built here.
        self._api = ApiClient(config.configuration)
        self._user_agent = f"tidegate/{__version__}"

    @classmethod
    async def connect(
        cls,
        kubeconfig: str | None = None,
        context: str | None = None,
        *,
        qps: float = 50.0,
        burst: int = 100,
    ) -> Client:
        """Load the configuration (see `load_config`) and make a client for it."""
        return cls(await load_config(kubeconfig, context), qps=qps, burst=burst)

    async def close(self) -> None:
        await self._api.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- resources ------------------------------------------------------------------------

    async def resource(self, api_version: str, kind: str) -> APIResource:
        """The REST mapping for a kind (raises `NoKindMatch` if the server has no such kind)."""
        return await self.mapper.resource_for(api_version, kind)

    async def get(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        impersonate: Impersonation | None = None,
    ) -> Object:
        res = await self.resource(api_version, kind)
        path = res.path(_namespace_for(res, namespace, name), name, subresource)
        return await self._get_json(path, impersonate=impersonate)

    async def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        resource_version: str | None = None,
        page_size: int = 500,
        impersonate: Impersonation | None = None,
    ) -> Object:
        """List objects (in one namespace, or all), following `continue` tokens.

        Returns a list object whose items carry `apiVersion` and `kind` and whose
        `metadata.resourceVersion` is the snapshot the pages were read at.
        """
        res = await self.resource(api_version, kind)
        query: dict[str, str] = {"limit": str(page_size)}
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if resource_version is not None:
            query["resourceVersion"] = resource_version
        path = res.path(namespace)
        first = await self._get_json(path, query=query, impersonate=impersonate)
        items: list[Object] = list(first.get("items") or [])
        token = first.get("metadata", {}).get("continue")
        while token:
            page = await self._get_json(
                path, query={**query, "continue": token}, impersonate=impersonate
            )
            items.extend(page.get("items") or [])
            token = page.get("metadata", {}).get("continue")
        for item in items:
            item.setdefault("apiVersion", res.api_version)
            item.setdefault("kind", res.kind)
        meta = dict(first.get("metadata") or {})
        meta.pop("continue", None)
        meta.pop("remainingItemCount", None)
        return {
            "apiVersion": res.api_version,
            "kind": f"{res.kind}List",
            "metadata": meta,
            "items": items,
        }

    async def create(
        self,
        obj: Mapping[str, Any],
        *,
        dry_run: bool = False,
        field_manager: str | None = None,
        impersonate: Impersonation | None = None,
    ) -> Object:
        res, namespace, _ = await self._locate(obj, need_name=False)
        query = _write_query(field_manager=field_manager, dry_run=dry_run)
        return await self._send_json(
            "POST", res.path(namespace), body=obj, query=query, impersonate=impersonate
        )

    async def apply(
        self,
        obj: Mapping[str, Any],
        *,
        field_manager: str,
        force: bool = False,
        dry_run: bool = False,
        subresource: str | None = None,
        impersonate: Impersonation | None = None,
    ) -> Object:
        """Server-side apply `obj` as `field_manager` (`force` takes over conflicting fields;
        `dry_run` asks the server what the result would be, persisting nothing)."""
        res, namespace, name = await self._locate(obj)
        query = _write_query(field_manager=field_manager, dry_run=dry_run)
        if force:
            query["force"] = "true"
        return await self._send_json(
            "PATCH",
            res.path(namespace, name, subresource),
            body=obj,
            content_type=APPLY_PATCH,
            query=query,
            impersonate=impersonate,
        )

    async def patch(
        self,
        api_version: str,
        kind: str,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        patch_type: PatchType = "merge",
        subresource: str | None = None,
        field_manager: str | None = None,
        dry_run: bool = False,
        impersonate: Impersonation | None = None,
    ) -> Object:
        res = await self.resource(api_version, kind)
        path = res.path(_namespace_for(res, namespace, name), name, subresource)
        return await self._send_json(
            "PATCH",
            path,
            body=patch,
            content_type=PATCH_TYPES[patch_type],
            query=_write_query(field_manager=field_manager, dry_run=dry_run),
            impersonate=impersonate,
        )

    async def patch_status(
        self,
        obj: Mapping[str, Any],
        status: Mapping[str, Any],
        *,
        field_manager: str | None = None,
        impersonate: Impersonation | None = None,
    ) -> Object:
        """Merge-patch `status` into the object's status subresource."""
        meta = obj.get("metadata", {})
        return await self.patch(
            str(obj.get("apiVersion")),
            str(obj.get("kind")),
            str(meta.get("name")),
            {"status": dict(status)},
            meta.get("namespace"),
            subresource="status",
            field_manager=field_manager,
            impersonate=impersonate,
        )

    async def delete(
        self,
        api_version: str,
        kind: str,
        name: str,
        namespace: str | None = None,
        *,
        propagation_policy: PropagationPolicy = "Background",
        grace_period_seconds: int | None = None,
        dry_run: bool = False,
        impersonate: Impersonation | None = None,
    ) -> Object:
        """Delete an object; returns the object as deleted (or the server's `Status`)."""
        res = await self.resource(api_version, kind)
        options: Object = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": propagation_policy,
        }
        if grace_period_seconds is not None:
            options["gracePeriodSeconds"] = grace_period_seconds
        if dry_run:
            options["dryRun"] = ["All"]
        return await self._send_json(
            "DELETE",
            res.path(_namespace_for(res, namespace, name), name),
            body=options,
            impersonate=impersonate,
        )

    async def watch(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        label_selector: str | None = None,
        field_selector: str | None = None,
        timeout_seconds: int | None = None,
        allow_bookmarks: bool = True,
        impersonate: Impersonation | None = None,
    ) -> AsyncIterator[WatchEvent]:
        """One watch request: yields its events until the server ends the stream.

        An expired `resource_version` raises `Gone` (whether the server says so with HTTP 410
        or with an ERROR event); `Watcher` turns that into a re-list.
        """
        res = await self.resource(api_version, kind)
        query = {"watch": "true"}
        if resource_version:
            query["resourceVersion"] = resource_version
        if allow_bookmarks:
            query["allowWatchBookmarks"] = "true"
        if label_selector:
            query["labelSelector"] = label_selector
        if field_selector:
            query["fieldSelector"] = field_selector
        if timeout_seconds is not None:
            query["timeoutSeconds"] = str(timeout_seconds)
        read_timeout = (timeout_seconds or 1800) + 30
        response = await self._send(
            "GET",
            res.path(namespace),
            query=query,
            impersonate=impersonate,
            timeout=aiohttp.ClientTimeout(sock_connect=self.timeout, sock_read=read_timeout),
        )
        try:
            if response.status >= 400:
                raise api_error(response.status, await response.read())
            async for line in _lines(response):
                event = json.loads(line)
                kind_of_event = str(event.get("type", ""))
                payload = event.get("object") or {}
                if kind_of_event == "ERROR":
                    raise api_error(int(payload.get("code") or 500), payload)
                yield WatchEvent(kind_of_event, payload)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectionFailed(f"watch {res.plural} on {self.config.host}: {exc}") from exc
        finally:
            # close, not release: a stream stopped midway must not go back to the pool.
            response.close()

    # -- transport ------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = JSON,
        impersonate: Impersonation | None = None,
    ) -> Object:
        """A raw request to an API path; returns the decoded JSON answer."""
        return await self._send_json(
            method,
            path,
            body=body,
            query=query,
            content_type=content_type,
            impersonate=impersonate,
        )

    async def _get_json(
        self,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        impersonate: Impersonation | None = None,
    ) -> Object:
        return await self._send_json("GET", path, query=query, impersonate=impersonate)

    async def _send_json(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Mapping[str, str] | None = None,
        content_type: str = JSON,
        impersonate: Impersonation | None = None,
    ) -> Object:
        data = None if body is None else json.dumps(body).encode()
        response = await self._send(
            method,
            path,
            query=query,
            data=data,
            content_type=content_type,
            impersonate=impersonate,
        )
        try:
            raw = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ConnectionFailed(f"{method} {self.config.host}{path}: {exc}") from exc
        finally:
            response.release()
        if response.status >= 400:
            raise api_error(response.status, raw)
        return cast(Object, json.loads(raw)) if raw else {}

    async def _send(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        data: bytes | None = None,
        content_type: str = JSON,
        impersonate: Impersonation | None = None,
        timeout: aiohttp.ClientTimeout | None = None,  # noqa: ASYNC109 - aiohttp's own
    ) -> aiohttp.ClientResponse:
        url = self.config.host + path
        if query:
            url += "?" + urlencode(query)
        refresh = False
        for _ in range(2):
            await self.limiter(path).acquire()
            headers: CIMultiDict[str] = CIMultiDict(
                [("Accept", JSON), ("User-Agent", self._user_agent)]
            )
            if data is not None:
                headers["Content-Type"] = content_type
            authorization = await self.config.authorization(refresh=refresh)
            if authorization:
                headers["Authorization"] = authorization
            if impersonate is not None:
                headers.extend(impersonate.headers())
            try:
                response = await self._api.rest_client.pool_manager.request(
                    method,
                    url,
                    data=data,
                    headers=headers,
                    timeout=timeout or aiohttp.ClientTimeout(total=self.timeout),
                    server_hostname=self.config.configuration.tls_server_name,
                )
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise ConnectionFailed(f"{method} {url}: {exc or type(exc).__name__}") from exc
            # An exec-plugin credential may have expired early: fetch a new one once.
            if response.status == 401 and not refresh and self._refreshable():
                response.release()
                refresh = True
                continue
            return response
        raise Unauthorized(401, "Unauthorized", f"{method} {url}: credential rejected")

    def limiter(self, path: str) -> TokenBucket:
        """The rate limiter of the API resource `path` addresses."""
        key = _resource_of(path)
        bucket = self.limiters.get(key)
        if bucket is None:
            bucket = self.limiters[key] = TokenBucket(self.qps, self.burst)
        return bucket

    def _refreshable(self) -> bool:
        loader = self.config._loader
        return loader is not None and loader._user is not None and "exec" in loader._user

    async def _locate(
        self, obj: Mapping[str, Any], *, need_name: bool = True
    ) -> tuple[APIResource, str | None, str]:
        api_version, kind = obj.get("apiVersion"), obj.get("kind")
        if not api_version or not kind:
            raise KubeError("object has no apiVersion or kind")
        meta = obj.get("metadata") or {}
        name = str(meta.get("name") or "")
        if need_name and not name:
            raise KubeError(f"{kind} has no metadata.name")
        res = await self.resource(str(api_version), str(kind))
        label = name or str(meta.get("generateName", ""))
        return res, _namespace_for(res, meta.get("namespace"), label), name


def _namespace_for(res: APIResource, namespace: str | None, name: str) -> str | None:
    if res.namespaced and not namespace:
        raise KubeError(f"{res.kind} '{name}' is namespaced: a namespace is required")
    return namespace if res.namespaced else None


def _write_query(*, field_manager: str | None, dry_run: bool) -> dict[str, str]:
    query: dict[str, str] = {}
    if field_manager:
        query["fieldManager"] = field_manager
    if dry_run:
        query["dryRun"] = "All"
    return query


async def _lines(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """Split a watch stream into lines without aiohttp's per-line size limit."""
    buffer = b""
    async for chunk in response.content.iter_any():
        buffer += chunk
        while b"\n" in buffer:
            line, _, buffer = buffer.partition(b"\n")
            if line.strip():
                yield line
    if buffer.strip():
        yield buffer


def _resource_of(path: str) -> str:
    """`group/version/resource` of an API path (`/apis/g/v/namespaces/ns/res/name/status`);
    discovery and other paths count by their first segment."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts[0] == "api":
        group_version, rest = parts[1:2], parts[2:]
    elif parts[0] == "apis":
        group_version, rest = parts[1:3], parts[3:]
    else:
        return parts[0]
    if not rest:
        return "discovery"
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    return "/".join([*group_version, rest[0]])

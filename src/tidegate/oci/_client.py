"""An OCI distribution client: auth, blobs, manifests, tags, referrers."""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from tidegate import __version__
from tidegate._http import Body, Client, HTTPError, Response, TooLarge, TransportError

from ._auth import Challenge, Credentials, docker_credentials
from ._errors import (
    AuthenticationFailed,
    DigestMismatch,
    NotFound,
    OCIError,
    RegistryError,
)
from ._reference import Reference

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MANIFEST_TYPES = (OCI_MANIFEST, OCI_INDEX, DOCKER_MANIFEST, DOCKER_MANIFEST_LIST)
MAX_MANIFEST_SIZE = 4 << 20  # distribution's own limit
# Every answer read whole (manifests, tag pages, referrers, errors, tokens) stops here.
MAX_ANSWER = MAX_MANIFEST_SIZE
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class Sink(Protocol):
    """Where a downloaded blob goes: a file, or anything else that takes bytes."""

    def write(self, data: bytes, /) -> int: ...


# Called with the bytes just transferred and the size of the whole blob.
Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class Manifest:
    """A manifest exactly as the registry stored it: its bytes, media type and digest."""

    data: bytes
    media_type: str
    digest: str


@dataclass
class _Session:
    """Authentication state of one registry: the scheme it asked for and tokens per scope."""

    basic: bool = False
    tokens: dict[str, str] = field(default_factory=dict)


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class Registry:
    """One registry host. Anonymous, basic or bearer-token auth is picked from the
    registry's challenges; credentials come from the caller or from the docker config.

    Every request is retried with backoff on 429/5xx and connection errors; every byte read
    is checked against its digest.
    """

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        insecure: bool = False,
        ca_file: str | Path | None = None,
        client_cert: tuple[str | Path, str | Path] | None = None,
        tls: ssl.SSLContext | None = None,
        timeout: float = 60.0,
        retries: int = 4,
        chunk_size: int | None = None,
        docker_config: bool = True,
    ) -> None:
        self.host = host
        # Docker Hub's API lives on another host than its name.
        api_host = "registry-1.docker.io" if host == "docker.io" else host
        self.base = f"{'http' if insecure else 'https'}://{api_host}"
        self.retries = retries
        self.chunk_size = chunk_size
        self._credentials = credentials
        self._docker_config = docker_config and credentials is None
        self._session = _Session()
        make_tls = (lambda: tls) if tls else (lambda: _tls_context(ca_file, client_cert))
        self._http = Client(
            make_tls,
            timeout=timeout,
            # Blobs are compressed already; and an answer read whole is bounded by its size
            # as sent, which a compressed answer could exceed many times over once inflated.
            headers={"User-Agent": f"tidegate/{__version__}", "Accept-Encoding": "identity"},
        )

    async def close(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Registry:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- manifests ------------------------------------------------------------------------

    async def fetch_manifest(
        self, ref: Reference, accept: tuple[str, ...] = MANIFEST_TYPES
    ) -> Manifest:
        """GET a manifest by tag or digest; its bytes are checked against the digest."""
        response = await self._send(
            "GET",
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            ref,
            headers={"Accept": ", ".join(accept)},
        )
        await self._expect(response, ref, 200)
        data = response.content  # at most MAX_ANSWER bytes: `_send` read it bounded
        digest = sha256_digest(data)
        for claimed in (ref.digest, response.headers.get("Docker-Content-Digest")):
            if claimed and claimed != digest:
                raise DigestMismatch(
                    f"manifest of '{ref}' hashes to {digest}, not the expected {claimed}"
                )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip()
        return Manifest(data, media_type, digest)

    async def resolve(self, ref: Reference) -> str:
        """The digest a tag points to now (HEAD, falling back to GET)."""
        response = await self._send(
            "HEAD",
            f"/v2/{ref.repository}/manifests/{ref.identifier}",
            ref,
            headers={"Accept": ", ".join(MANIFEST_TYPES)},
        )
        await self._expect(response, ref, 200)
        digest = response.headers.get("Docker-Content-Digest")
        if digest:
            return str(digest)
        return (await self.fetch_manifest(ref)).digest

    async def push_manifest(self, ref: Reference, data: bytes, media_type: str) -> str:
        """PUT the exact manifest bytes under `ref`'s tag (or digest); returns the digest."""
        digest = sha256_digest(data)
        response = await self._send(
            "PUT",
            f"/v2/{ref.repository}/manifests/{ref.tag or digest}",
            ref,
            write=True,
            headers={"Content-Type": media_type},
            content=data,
        )
        await self._expect(response, ref, 201)
        stored = response.headers.get("Docker-Content-Digest")
        if stored and stored != digest:
            raise DigestMismatch(f"registry stored '{ref}' as {stored}, expected {digest}")
        return digest

    async def delete_manifest(self, ref: Reference) -> None:
        digest = ref.digest or await self.resolve(ref)
        response = await self._send(
            "DELETE", f"/v2/{ref.repository}/manifests/{digest}", ref, write=True
        )
        await self._expect(response, ref, 202)

    # -- tags and referrers ---------------------------------------------------------------

    async def tags(self, repository: str, page_size: int = 1000) -> list[str]:
        """All tags of a repository, following `Link` pagination."""
        ref = Reference(self.host, repository)
        path: str | None = f"/v2/{repository}/tags/list?n={page_size}"
        tags: list[str] = []
        while path:
            response = await self._send("GET", path, ref)
            await self._expect(response, ref, 200)
            tags.extend(response.json().get("tags") or [])
            path = _next_link(response.headers.get("Link"))
        return tags

    async def referrers(
        self, repository: str, digest: str, artifact_type: str | None = None
    ) -> list[dict[str, Any]]:
        """Manifests that refer to `digest` (signatures, SBOMs …).

        Uses the referrers API, or the `sha256-<hex>` tag schema on registries without it.
        """
        ref = Reference(self.host, repository, digest=digest)
        query = f"?artifactType={artifact_type}" if artifact_type else ""
        response = await self._send("GET", f"/v2/{repository}/referrers/{digest}{query}", ref)
        if response.status_code == 200 and "json" in response.headers.get("Content-Type", ""):
            manifests = list(response.json().get("manifests") or [])
            filtered = "OCI-Filters-Applied" in response.headers
        else:
            if response.status_code not in (200, 404):
                await self._expect(response, ref, 200)
            fallback = ref.with_tag(digest.replace(":", "-"))
            try:
                index = await self.fetch_manifest(fallback, (OCI_INDEX,))
            except NotFound:
                return []
            manifests = list(_json(index.data, fallback).get("manifests") or [])
            filtered = False
        if artifact_type and not filtered:
            manifests = [m for m in manifests if m.get("artifactType") == artifact_type]
        return manifests

    # -- blobs ----------------------------------------------------------------------------

    async def blob_exists(self, repository: str, digest: str) -> bool:
        ref = Reference(self.host, repository, digest=digest)
        response = await self._send("HEAD", f"/v2/{repository}/blobs/{digest}", ref)
        if response.status_code == 404:
            return False
        await self._expect(response, ref, 200)
        return True

    async def push_blob(
        self,
        repository: str,
        digest: str,
        size: int,
        data: bytes | Path,
        *,
        mount_from: str | None = None,
        progress: Progress | None = None,
    ) -> bool:
        """Upload a blob unless the repository has it; returns whether bytes were sent.

        With `mount_from`, asks the registry to link the blob from another repository first.
        Uploads in `chunk_size` PATCHes when set and the blob is larger, else in one PUT.
        """
        ref = Reference(self.host, repository, digest=digest)
        if await self.blob_exists(repository, digest):
            return False
        start = f"/v2/{repository}/blobs/uploads/"
        if mount_from:
            start += "?" + urlencode({"mount": digest, "from": mount_from})
        response = await self._send(
            "POST", start, ref, write=True, extra_scope=mount_from, content=b""
        )
        if mount_from and response.status_code == 201:
            return False
        await self._expect(response, ref, 202)
        location = self._location(response, ref)
        if self.chunk_size and size > self.chunk_size:
            offset = 0
            async for chunk in _chunks(data, self.chunk_size):
                response = await self._send(
                    "PATCH",
                    location,
                    ref,
                    write=True,
                    headers={
                        "Content-Type": "application/octet-stream",
                        "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                    },
                    content=chunk,
                )
                await self._expect(response, ref, 202)
                location = self._location(response, ref)
                offset += len(chunk)
                if progress:
                    progress(len(chunk), size)
            body: bytes | Callable[[], AsyncIterator[bytes]] = b""
        elif isinstance(data, bytes):
            body = data
        else:
            body = lambda: _chunks(data, 1 << 20, progress, size)  # noqa: E731 - replayable
        response = await self._send(
            "PUT",
            _with_query(location, {"digest": digest}),
            ref,
            write=True,
            headers={"Content-Type": "application/octet-stream"},
            content=body,
        )
        await self._expect(response, ref, 201)
        if progress and body is data:
            progress(len(data), size)
        return True

    async def fetch_blob(
        self,
        repository: str,
        digest: str,
        out: Sink,
        *,
        max_size: int | None = None,
        progress: Progress | None = None,
    ) -> int:
        """Stream a blob into `out`, checking its digest and size limit as bytes arrive."""
        ref = Reference(self.host, repository, digest=digest)
        response = await self._send("GET", f"/v2/{repository}/blobs/{digest}", ref, stream=True)
        try:
            await self._expect(response, ref, 200)
            hasher = hashlib.sha256()
            total = 0
            async for chunk in response.aiter_bytes():  # as they arrive: re-chunking copies
                total += len(chunk)
                if max_size is not None and total > max_size:
                    raise DigestMismatch(
                        f"blob {digest} of '{ref.name}' is larger than its {max_size} bytes"
                    )
                hasher.update(chunk)
                out.write(chunk)
                if progress:
                    progress(len(chunk), max_size or 0)
        except HTTPError as exc:
            raise OCIError(f"failed to download blob {digest} of '{ref.name}': {exc}") from exc
        finally:
            await response.aclose()
        actual = "sha256:" + hasher.hexdigest()
        if actual != digest:
            raise DigestMismatch(f"blob {digest} of '{ref.name}' hashes to {actual}")
        return total

    # -- transport ------------------------------------------------------------------------

    def _credentials_for_host(self) -> Credentials | None:
        if self._credentials is None and self._docker_config:
            self._credentials = docker_credentials(self.host)
            self._docker_config = False
        return self._credentials

    async def _send(
        self,
        method: str,
        path: str,
        ref: Reference,
        *,
        write: bool = False,
        extra_scope: str | None = None,
        headers: dict[str, str] | None = None,
        content: Body = None,
        stream: bool = False,
    ) -> Response:
        url = path if path.startswith(("http://", "https://")) else self.base + path
        scope = f"repository:{ref.repository}:{'pull,push' if write else 'pull'}"
        if extra_scope:
            scope += f" repository:{extra_scope}:pull"
        authenticated = False
        attempt = 0
        while True:
            request_headers = dict(headers or {})
            authorization = self._authorization(scope)
            if authorization:
                request_headers["Authorization"] = authorization
            try:
                response = await self._http.request(
                    method, url, headers=request_headers, content=content
                )
                if not stream:
                    try:
                        await _read_bounded(response, f"'{ref}'")
                    except OCIError:
                        if response.status_code < 400:
                            raise  # else the status is the error to report
            except (TransportError, ssl.SSLError) as exc:
                if _tls_failure(exc):  # a certificate problem does not go away by retrying
                    raise OCIError(f"TLS with {self.host} failed for '{ref}': {exc}") from exc
                if attempt < self.retries:
                    attempt += 1
                    await _backoff(attempt, None)
                    continue
                raise OCIError(f"failed to reach {self.host} for '{ref}': {exc}") from exc
            except HTTPError as exc:  # the request itself cannot be made: retrying is no use
                raise OCIError(f"cannot ask {self.host} for '{ref}': {exc}") from exc
            if response.status_code == 401 and not authenticated:
                challenge = response.headers.get("WWW-Authenticate", "")
                await response.aclose()
                await self._authenticate(Challenge.parse(challenge), scope, ref)
                authenticated = True
                continue
            if response.status_code in _RETRY_STATUS and attempt < self.retries:
                attempt += 1
                await response.aclose()
                await _backoff(attempt, response.headers.get("Retry-After"))
                continue
            return response

    def _authorization(self, scope: str) -> str | None:
        token = self._session.tokens.get(scope)
        if token:
            return f"Bearer {token}"
        credentials = self._credentials
        if self._session.basic and credentials is not None:
            return credentials.basic()
        return None

    async def _authenticate(self, challenge: Challenge, scope: str, ref: Reference) -> None:
        credentials = self._credentials_for_host()
        if challenge.scheme == "basic":
            if credentials is None:
                raise AuthenticationFailed(str(ref), 401, "UNAUTHORIZED", "authentication required")
            if self._session.basic:
                raise AuthenticationFailed(str(ref), 401, "UNAUTHORIZED", "invalid credentials")
            self._session.basic = True
            return
        if challenge.scheme != "bearer" or "realm" not in challenge.params:
            raise AuthenticationFailed(
                str(ref), 401, "UNAUTHORIZED", f"unsupported authentication challenge "
                f"'{challenge.scheme}'"
            )  # fmt: skip
        scopes = _merge_scopes([*scope.split(), *challenge.params.get("scope", "").split()])
        query: list[tuple[str, str]] = [("service", challenge.params.get("service", ""))]
        query += [("scope", s) for s in scopes]
        realm = challenge.params["realm"]
        if credentials is not None and credentials.identity_token:
            form = {
                "grant_type": "refresh_token",
                "refresh_token": credentials.identity_token,
                "service": challenge.params.get("service", ""),
                "scope": " ".join(scopes),
                "client_id": "tidegate",
            }
            answer = await self._token_request("POST", realm, ref, data=form)
        else:
            headers = {"Authorization": credentials.basic()} if credentials else {}
            answer = await self._token_request(
                "GET", f"{realm}?{urlencode(query)}", ref, headers=headers
            )
        token = answer.get("token") or answer.get("access_token")
        if not token:
            raise AuthenticationFailed(str(ref), 401, "UNAUTHORIZED", "token service gave no token")
        self._session.tokens[scope] = str(token)

    async def _token_request(
        self,
        method: str,
        url: str,
        ref: Reference,
        *,
        headers: dict[str, str] | None = None,
        data: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        fields = dict(headers or {})
        body = None
        if data is not None:
            body = urlencode(data).encode()
            fields["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            response = await self._http.request(method, url, headers=fields, content=body)
            await _read_bounded(response, f"the token service of {self.host}")
        except HTTPError as exc:
            raise OCIError(f"failed to reach the token service of {self.host}: {exc}") from exc
        if response.status_code != 200:
            code, message = _error_detail(response)
            raise AuthenticationFailed(
                str(ref), response.status_code, code or "UNAUTHORIZED",
                f"token service refused: {message or response.reason_phrase}",
            )  # fmt: skip
        return _json(response.content, ref)

    async def _expect(self, response: Response, ref: Reference, status: int) -> None:
        if response.status_code == status:
            return
        try:
            await _read_bounded(response, f"'{ref}'")
            code, message = _error_detail(response)
        except (OCIError, HTTPError):
            code, message = "", ""  # an error page too large or cut short: the status tells
        await response.aclose()
        kind: type[RegistryError] = RegistryError
        if response.status_code == 404:
            kind = NotFound
        elif response.status_code in (401, 403):
            kind = AuthenticationFailed
            # HEAD answers carry no body: say what the challenge and the request tell.
            code = code or ("UNAUTHORIZED" if response.status_code == 401 else "DENIED")
            error = Challenge.parse(response.headers.get("WWW-Authenticate", "")).params
            if not message and error.get("error") == "insufficient_scope":
                message = f"access to repository '{ref.repository}' not granted"
            elif not message:
                sent = "Authorization" in response.request_headers
                message = "credentials rejected" if sent else "authentication required"
        raise kind(str(ref), response.status_code, code, message or response.reason_phrase)

    def _location(self, response: Response, ref: Reference) -> str:
        location = response.headers.get("Location")
        if not location:
            raise RegistryError(str(ref), response.status_code, "", "upload without Location")
        return str(urljoin(self.base + "/", str(location)))


def _tls_context(
    ca_file: str | Path | None, client_cert: tuple[str | Path, str | Path] | None
) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    if client_cert:
        context.load_cert_chain(str(client_cert[0]), str(client_cert[1]))
    return context


def _tls_failure(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def _with_query(url: str, extra: dict[str, str]) -> str:
    """Add parameters to a URL that may already carry a query: upload `Location`s do, and
    the registry needs that query back as it was."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True) + list(extra.items())
    return urlunsplit(parts._replace(query=urlencode(query)))


def _merge_scopes(scopes: list[str]) -> list[str]:
    """One scope per resource with the union of the actions: `repository:a:push,pull` and
    `repository:a:pull` → `repository:a:pull,push`."""
    actions: dict[str, set[str]] = {}
    for scope in scopes:
        resource, _, wanted = scope.rpartition(":")
        if resource:
            actions.setdefault(resource, set()).update(a for a in wanted.split(",") if a)
    return [f"{resource}:{','.join(sorted(acts))}" for resource, acts in sorted(actions.items())]


def _next_link(header: str | None) -> str | None:
    if not header:
        return None
    for part in header.split(","):
        target, _, params = part.partition(";")
        if 'rel="next"' in params.replace(" ", ""):
            return target.strip().strip("<>")
    return None


async def _read_bounded(response: Response, what: str) -> None:
    """Read an answer whole (into `response.content`), refusing more than `MAX_ANSWER` bytes:
    a registry cannot make the client hold an endless manifest or error page in memory."""
    encoding = (response.headers.get("Content-Encoding") or "identity").strip().lower()
    if encoding not in ("", "identity"):
        # Asked for identity: a compressed answer could inflate past any limit set here.
        await response.aclose()
        raise OCIError(f"{what}: answer with Content-Encoding '{encoding}', not asked for")
    try:
        await response.aread(MAX_ANSWER)
    except TooLarge:
        raise OCIError(f"{what}: the registry's answer exceeds {MAX_ANSWER} bytes") from None


def _error_detail(response: Response) -> tuple[str, str]:
    try:
        errors = response.json().get("errors") or []
    except (ValueError, AttributeError, RuntimeError):
        return "", ""
    if not errors or not isinstance(errors[0], dict):
        return "", ""
    first = errors[0]
    return str(first.get("code") or ""), str(first.get("message") or "")


def _json(data: bytes, ref: Reference | str) -> dict[str, Any]:
    try:
        parsed = json.loads(data)
    except ValueError as exc:
        raise OCIError(f"'{ref}': invalid JSON from the registry: {exc}") from exc
    if not isinstance(parsed, dict):
        raise OCIError(f"'{ref}': expected a JSON object from the registry")
    return parsed


async def _backoff(attempt: int, retry_after: str | None) -> None:
    delay = min(10.0, 0.25 * 2**attempt) * random.uniform(0.8, 1.2)
    if retry_after and retry_after.isdigit():
        delay = min(30.0, float(retry_after))
    await asyncio.sleep(delay)


async def _chunks(
    data: bytes | Path, size: int, progress: Progress | None = None, total: int = 0
) -> AsyncIterator[bytes]:
    if isinstance(data, bytes):
        for start in range(0, len(data), size):
            yield data[start : start + size]
        return
    # File reads go to a thread: the event loop keeps serving other transfers meanwhile.
    handle = await asyncio.to_thread(open, data, "rb")
    try:
        while chunk := await asyncio.to_thread(handle.read, size):
            if progress:
                progress(len(chunk), total)
            yield chunk
    finally:
        handle.close()

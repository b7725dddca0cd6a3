"""HTTP/1.1 on asyncio streams: what the registry client and the Kustomization controller's
artifact downloads speak.

A command line pays for every module it imports before its first request, and httpx (with
httpcore, anyio, h11, and urllib.request for its proxy settings) costs 30-50 ms of a pull
that takes 300. This module is what talking to a registry or an artifact server needs, and
no more:

- connections kept alive per host, request bodies of known length or chunked, response
  bodies framed by `Content-Length`, chunked, or read to the end of the connection;
- redirects followed as httpx and browsers follow them, without the `Authorization` header
  once one leads to another origin (a registry's token never goes to a blob store);
- proxies from `HTTP_PROXY`, `HTTPS_PROXY` and `NO_PROXY` read as Go, and so flux, reads them:
  plain-HTTP URLs are forwarded, HTTPS URLs tunnelled with
  `CONNECT`;
- a timeout for connecting, for each read, and for each MiB sent.

A peer breaking the protocol (malformed status line or headers, oversized heads, bodies
shorter than announced) ends the request with `ProtocolError`, and the connection is dropped.
Error messages name hosts, never whole URLs: a redirect's query may carry a signature.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, overload
from urllib.parse import quote, unquote, urljoin, urlsplit

# Limits on what a peer may send before the body: a head is the status line and headers.
MAX_HEAD = 64 << 10
MAX_HEADERS = 256
MAX_REDIRECTS = 20
# Largest piece of body handed up at once, or sent before waiting for the peer to take it.
_READ = 1 << 20
# Connections kept open per host for the next request, and open at once overall.
_IDLE_PER_HOST = 8
_MAX_CONNECTIONS = 100
# A redirect's own body is read (to keep its connection) when it is at most this large.
_REDIRECT_BODY = 64 << 10

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d{3})(?: ([^\r\n]*))?\r\n")
_HEADER = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*?)[ \t]*\r\n")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
# Characters kept as they are in a request target; anything else is percent-encoded.
_TARGET_SAFE = "!#$%&'()*+,/:;=?@[]~"

# A request body: bytes, or a function giving a fresh stream of them for each (re)send.
Body = bytes | Callable[[], AsyncIterator[bytes]] | None


class HTTPError(Exception):
    """A request that got no answer, or no complete one."""


class TransportError(HTTPError):
    """The connection failed or the peer broke the protocol: trying again may help."""


class ConnectError(TransportError):
    pass


class ProxyError(TransportError):
    pass


class ReadError(TransportError):
    pass


class WriteError(TransportError):
    pass


class ProtocolError(TransportError):
    pass


class Timeout(TransportError):
    pass


class ConnectTimeout(Timeout):
    pass


class ReadTimeout(Timeout):
    pass


class WriteTimeout(Timeout):
    pass


class PoolTimeout(Timeout):
    pass


class RequestError(HTTPError):
    """The request cannot be made as asked (its URL, a header, the proxy, endless
    redirects): trying again will not help."""


class TooLarge(HTTPError):
    """A body read whole ran past the limit it was read with."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"answer larger than {limit} bytes")
        self.limit = limit


class Headers:
    """Header fields in order, looked up case-insensitively; repeated fields are joined
    with commas by `get`."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[tuple[str, str]] = ()) -> None:
        self._items = list(items)

    def get_list(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self._items if key.lower() == name]

    @overload
    def get(self, name: str) -> str | None: ...
    @overload
    def get(self, name: str, default: str) -> str: ...
    def get(self, name: str, default: str | None = None) -> str | None:
        values = self.get_list(name)
        return ", ".join(values) if values else default

    def __getitem__(self, name: str) -> str:
        value = self.get(name)
        if value is None:
            raise KeyError(name)
        return value

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.get_list(name))

    def items(self) -> list[tuple[str, str]]:
        return list(self._items)

    def add(self, name: str, value: str) -> None:
        self._items.append((name, value))


class _URL:
    """The parts of an http(s) URL a request needs."""

    __slots__ = ("authority", "host", "port", "scheme", "target", "text")

    def __init__(self, text: str) -> None:
        parts = urlsplit(text)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https"):
            raise RequestError(f"unsupported URL scheme '{scheme}'")
        try:
            port = parts.port
        except ValueError:
            raise RequestError(f"invalid port in a URL for {parts.hostname}") from None
        if not parts.hostname:
            raise RequestError("URL without a host")
        default = 443 if scheme == "https" else 80
        self.text = text
        self.scheme = scheme
        self.host = parts.hostname
        self.port = port or default
        self.authority = _authority(self.host, self.port, default)
        target = quote(parts.path or "/", safe=_TARGET_SAFE)
        if parts.query:
            target += "?" + quote(parts.query, safe=_TARGET_SAFE)
        self.target = target

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


def _authority(host: str, port: int, default: int | None = None) -> str:
    """`host:port` as a Host header or `CONNECT` target gives it; the port left out when it
    is the scheme's `default`."""
    bracketed = f"[{host}]" if ":" in host else host
    return bracketed if port == default else f"{bracketed}:{port}"


class Response:
    """Status and headers, with the body still to be read (`aiter_bytes`, `aread`); `aclose`
    hands the connection back, or drops it when the body was not read to its end."""

    def __init__(
        self,
        status: int,
        reason: str,
        headers: Headers,
        request_headers: Headers,
        body: _Body | None,
    ) -> None:
        self.status_code = status
        self.reason_phrase = reason
        self.headers = headers
        self.request_headers = request_headers  # as sent, to the server that answered
        self._body = body
        self._content: bytes | None = None

    async def aiter_bytes(self) -> AsyncIterator[bytes]:
        if self._content is not None:
            if self._content:
                yield self._content
            return
        if self._body is None:
            return
        try:
            async for data in self._body:
                yield data
        finally:
            await self.aclose()

    async def aread(self, limit: int | None = None) -> bytes:
        """The whole body; more than `limit` bytes raise `TooLarge` as soon as they arrive."""
        if self._content is None:
            parts: list[bytes] = []
            total = 0
            try:
                async for data in self.aiter_bytes():
                    total += len(data)
                    if limit is not None and total > limit:
                        raise TooLarge(limit)
                    parts.append(data)
            finally:
                await self.aclose()
            self._content = b"".join(parts)
        return self._content

    @property
    def content(self) -> bytes:
        if self._content is None:
            raise RuntimeError("the body has not been read")
        return self._content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return json.loads(self.content)

    async def aclose(self) -> None:
        if self._body is not None:
            body, self._body = self._body, None
            await body.aclose()


class Client:
    """Requests over kept-alive connections; plain HTTP, and HTTPS with the TLS context
    `tls` gives on first use (loading the system's CA certificates takes tens of
    milliseconds a plain-HTTP registry need not pay)."""

    def __init__(
        self,
        tls: Callable[[], ssl.SSLContext],
        *,
        timeout: float | None = 60.0,
        headers: Mapping[str, str] | None = None,
        proxies: Proxies | None = None,
    ) -> None:
        self._tls_factory = tls
        self._tls: ssl.SSLContext | None = None
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.proxies = Proxies.from_environment() if proxies is None else proxies
        self._idle: dict[_Key, list[_Connection]] = {}
        self._slots = asyncio.Semaphore(_MAX_CONNECTIONS)
        self._closed = False

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        content: Body = None,
        follow_redirects: bool = True,
    ) -> Response:
        """Send a request and return the answer with its body unread; redirects followed."""
        fields = {**self.headers, **(headers or {})}
        for _ in range(MAX_REDIRECTS + 1):
            parsed = _URL(url)
            response = await self._send(method, parsed, fields, content)
            location = response.headers.get("Location")
            if not follow_redirects or response.status_code not in _REDIRECTS or not location:
                return response
            with suppress(HTTPError, OSError):
                await response.aread(_REDIRECT_BODY)  # read, so that the connection is kept
            url = urljoin(url, location.strip())
            if _URL(url).origin != parsed.origin:
                fields = {k: v for k, v in fields.items() if k.lower() != "authorization"}
            status = response.status_code
            if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
                method, content = "GET", None
        raise RequestError(f"more than {MAX_REDIRECTS} redirects from {parsed.authority}")

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()

    # -- one exchange

    async def _send(
        self, method: str, url: _URL, fields: Mapping[str, str], content: Body
    ) -> Response:
        proxy = self.proxies.select(url)
        # Plain HTTP through a proxy is forwarded (HTTPS goes through a tunnel, in `_open`).
        forwarding = proxy if proxy is not None and url.scheme == "http" else None
        sent = Headers([("Host", url.authority), *fields.items()])
        if "accept" not in {k.lower() for k in fields}:
            sent.add("Accept", "*/*")
        if isinstance(content, bytes):
            if content or method not in ("GET", "HEAD", "DELETE", "OPTIONS"):
                sent.add("Content-Length", str(len(content)))
        elif content is not None:
            sent.add("Transfer-Encoding", "chunked")
        target = url.target
        key: _Key = (url.scheme, url.host, url.port, proxy.key if proxy else "")
        if forwarding is not None:
            if forwarding.authorization:
                sent.add("Proxy-Authorization", forwarding.authorization)
            target = f"{url.scheme}://{url.authority}{url.target}"
            key = ("http", forwarding.host, forwarding.port, "forward")
        head = _request_head(method, target, sent)
        try:
            async with asyncio.timeout(self.timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout("no connection free in time") from None
        try:
            return await self._exchange(method, url, proxy, key, head, content, sent)
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self,
        method: str,
        url: _URL,
        proxy: _Proxy | None,
        key: _Key,
        head: bytes,
        content: Body,
        sent: Headers,
    ) -> Response:
        # A kept-alive connection the server has meanwhile closed fails before any answer;
        # the request then goes once more on a new connection.
        while True:
            connection = self._take_idle(key)
            reused = connection is not None
            if connection is None:
                connection = await self._open(url, proxy)
            try:
                await connection.send(head, content)
                version, status, reason, headers = await connection.read_head()
                framing = _framing(method, status, headers)
            except TransportError:
                connection.close()
                if reused and connection.answered_nothing:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            break
        keep_alive = _keep_alive(version, headers, sent)
        body = _Body(self, key, connection, framing, keep_alive)
        decoded = Headers((k.decode("latin-1"), v.decode("latin-1")) for k, v in headers)
        return Response(status, reason.decode("latin-1"), decoded, sent, body)

    async def _open(self, url: _URL, proxy: _Proxy | None) -> _Connection:
        tls = self._tls_for(url)
        if proxy is None:
            name = url.host if tls else None
            return await _Connection.open(url.host, url.port, tls, name, self.timeout)
        try:
            connection = await _Connection.open(proxy.host, proxy.port, None, None, self.timeout)
        except ConnectError as exc:
            raise ProxyError(f"cannot reach the proxy {proxy.key}: {exc}") from exc
        if tls is None:
            return connection  # plain HTTP: requests are forwarded
        try:
            await connection.tunnel(url, proxy, tls)
        except BaseException:
            connection.close()
            raise
        return connection

    def _tls_for(self, url: _URL) -> ssl.SSLContext | None:
        if url.scheme != "https":
            return None  # no certificate is ever checked on plain http:// URLs
        if self._tls is None:
            self._tls = self._tls_factory()
        return self._tls

    def _take_idle(self, key: _Key) -> _Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()
            if connection.usable():
                return connection
            connection.close()
        return None

    def _release(self, key: _Key, connection: _Connection | None) -> None:
        """The end of a response: its connection kept for the next request, or closed."""
        self._slots.release()
        if connection is None:
            return
        idle = self._idle.setdefault(key, [])
        if self._closed or len(idle) >= _IDLE_PER_HOST or not connection.usable():
            connection.close()
        else:
            idle.append(connection)


_Key = tuple[str, str, int, str]  # scheme, host, port, and the proxy on the way (if any)
_Head = tuple[int, int, bytes, list[tuple[bytes, bytes]]]  # version, status, reason, headers


def _request_head(method: str, target: str, headers: Headers) -> bytes:
    lines = [f"{method} {target} HTTP/1.1"]
    for name, value in headers.items():
        if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\0"):
            raise RequestError(f"header '{name[:40]}' with a line break or a bad name")
        lines.append(f"{name}: {value}")
    try:
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
    except UnicodeEncodeError:
        raise RequestError("a header value that is not Latin-1 text") from None


class _Connection:
    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, limit: float | None
    ) -> None:
        self.reader = reader
        self.writer = writer
        self.limit = limit  # seconds for connecting, for each read, for each MiB sent
        self.answered_nothing = True

    @classmethod
    async def open(
        cls,
        host: str,
        port: int,
        tls: ssl.SSLContext | None,
        server_hostname: str | None,
        limit: float | None,
    ) -> _Connection:
        try:
            async with asyncio.timeout(limit):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=server_hostname, limit=MAX_HEAD
                )
        except TimeoutError:
            raise ConnectTimeout(f"timed out connecting to {host}:{port}") from None
        except OSError as exc:  # refused, unresolvable, TLS handshake failures
            raise ConnectError(_connect_failure(exc)) from exc
        return cls(reader, writer, limit)

    async def tunnel(self, url: _URL, proxy: _Proxy, tls: ssl.SSLContext) -> None:
        """Ask the proxy for a tunnel to `url`'s host, and start TLS with that host in it."""
        authority = _authority(url.host, url.port)
        fields = Headers([("Host", authority)])
        if proxy.authorization:
            fields.add("Proxy-Authorization", proxy.authorization)
        self.writer.write(_request_head("CONNECT", authority, fields))
        _, status, reason, _ = await self.read_head()
        if not 200 <= status < 300:
            why = f"proxy {proxy.key} refused a tunnel to {authority}: {status} {reason.decode()}"
            # A proxy's gateway errors may pass; anything else (407: credentials) will not.
            raise ProxyError(why) if status in (502, 503, 504) else RequestError(why)
        self.answered_nothing = True
        try:
            async with asyncio.timeout(self.limit):
                await self.writer.start_tls(tls, server_hostname=url.host)
        except TimeoutError:
            raise ConnectTimeout(f"timed out starting TLS with {authority}") from None
        except OSError as exc:
            raise ConnectError(_connect_failure(exc)) from exc

    def usable(self) -> bool:
        """Whether the connection can carry another request (the server has not closed it)."""
        return not self.writer.transport.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()

    async def send(self, head: bytes, content: Body) -> None:
        # The write timeout applies to each MiB sent: a large upload over a slow link may take
        # longer than it, as long as it keeps moving.
        self.writer.write(head)
        if isinstance(content, bytes):
            await self._write(content)
        elif content is not None:
            async for piece in content():
                if piece:
                    self.writer.write(b"%x\r\n" % len(piece))
                    await self._write(piece)
                    self.writer.write(b"\r\n")
            self.writer.write(b"0\r\n\r\n")
        async with _io(self.limit, write=True):
            await self.writer.drain()

    async def _write(self, data: bytes) -> None:
        view = memoryview(data)
        for start in range(0, len(view), _READ):
            self.writer.write(view[start : start + _READ])
            async with _io(self.limit, write=True):
                await self.writer.drain()

    async def read_head(self) -> _Head:
        """Status and headers of the final answer (informational 1xx answers skipped)."""
        while True:
            async with _io(self.limit):
                try:
                    raw = await self.reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    raise ProtocolError(f"response head larger than {MAX_HEAD} bytes") from None
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        self.answered_nothing = False
                        raise ProtocolError(
                            "connection closed in the middle of the response head"
                        ) from None
                    raise ProtocolError("server closed the connection without answering") from None
            self.answered_nothing = False
            version, status, reason, headers = _parse_head(raw)
            if status == 101:
                raise ProtocolError("unexpected protocol switch")
            if status >= 200:
                return version, status, reason, headers


def _parse_head(raw: bytes) -> _Head:
    status_line = _STATUS_LINE.match(raw)
    if status_line is None:
        first = raw.split(b"\r\n", 1)[0][:80]
        raise ProtocolError(f"malformed status line {first!r}")
    headers: list[tuple[bytes, bytes]] = []
    position = status_line.end()
    end = len(raw) - 2  # the blank line
    while position < end:
        header = _HEADER.match(raw, position)
        if header is None:
            line = raw[position:].split(b"\r\n", 1)[0][:80]
            raise ProtocolError(f"malformed header line {line!r}")
        headers.append((header[1], header[2]))
        position = header.end()
        if len(headers) > MAX_HEADERS:
            raise ProtocolError(f"more than {MAX_HEADERS} response headers")
    return int(status_line[1]), int(status_line[2]), status_line[3] or b"", headers


def _connect_failure(exc: OSError) -> str:
    """asyncio words a refused connection "Connect call failed ('host', port)": the system's
    own words say why."""
    if isinstance(exc, ssl.SSLError) or not exc.errno or exc.errno < 0:
        return str(exc) or type(exc).__name__
    return f"[Errno {exc.errno}] {os.strerror(exc.errno)}"


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


def _keep_alive(version: int, headers: list[tuple[bytes, bytes]], sent: Headers) -> bool:
    tokens = {
        token.strip().lower()
        for value in _header(headers, b"connection")
        + [v.encode("latin-1") for v in sent.get_list("connection")]
        for token in value.split(b",")
    }
    return version == 1 and b"close" not in tokens


# How a response body ends: ("none",), ("length", n), ("chunked",) or ("close",).
_Framing = tuple[str, int]


def _framing(method: str, status: int, headers: list[tuple[bytes, bytes]]) -> _Framing:
    if method == "HEAD" or status in (204, 304):
        return ("none", 0)
    encodings = [
        coding.strip().lower()
        for value in _header(headers, b"transfer-encoding")
        for coding in value.split(b",")
    ]
    if encodings:
        if encodings[-1] != b"chunked":
            return ("close", 0)
        return ("chunked", 0)
    lengths = {v.strip() for v in _header(headers, b"content-length")}
    if lengths:
        if len(lengths) != 1 or not next(iter(lengths)).isdigit():
            raise ProtocolError(f"invalid Content-Length {sorted(lengths)!r}")
        return ("length", int(next(iter(lengths))))
    return ("close", 0)


@asynccontextmanager
async def _io(limit: float | None, *, write: bool = False) -> AsyncIterator[None]:
    """Socket errors and timeouts as this module's exceptions."""
    try:
        async with asyncio.timeout(limit):
            yield
    except TimeoutError:
        if write:
            raise WriteTimeout("timed out sending") from None
        raise ReadTimeout("timed out waiting for the server") from None
    except (OSError, EOFError) as exc:
        failure = WriteError if write else ReadError
        raise failure(str(exc) or type(exc).__name__) from exc


class _Body:
    """A response body as it arrives; its connection goes back to the pool once the body has
    been read to its end and closed."""

    def __init__(
        self,
        client: Client,
        key: _Key,
        connection: _Connection,
        framing: _Framing,
        keep_alive: bool,
    ) -> None:
        self.client = client
        self.key = key
        self.connection: _Connection | None = connection
        self.framing = framing
        self.keep_alive = keep_alive and framing[0] != "close"
        self.timeout = connection.limit
        self.complete = framing[0] == "none"
        self.released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self.complete or self.connection is None:
            return
        reader = self.connection.reader
        kind, length = self.framing
        if kind == "length":
            left = length
            while left:
                async with _io(self.timeout):
                    data = await reader.read(min(left, _READ))
                if not data:
                    raise ProtocolError(
                        f"connection closed after {length - left} of {length} body bytes"
                    )
                left -= len(data)
                yield data
        elif kind == "chunked":
            async for data in self._chunks(reader):
                yield data
        else:
            while True:
                async with _io(self.timeout):
                    data = await reader.read(_READ)
                if not data:
                    break
                yield data
        self.complete = True

    async def _chunks(self, reader: asyncio.StreamReader) -> AsyncIterator[bytes]:
        while True:
            size_line = await self._line(reader)
            size = _CHUNK_SIZE.fullmatch(size_line)
            if size is None:
                raise ProtocolError(f"malformed chunk size line {size_line[:40]!r}")
            left = int(size[1], 16)
            if left == 0:
                break
            while left:
                async with _io(self.timeout):
                    data = await reader.read(min(left, _READ))
                if not data:
                    raise ProtocolError("connection closed in the middle of a chunk")
                left -= len(data)
                yield data
            if await self._line(reader) != b"\r\n":
                raise ProtocolError("chunk without its line end")
        trailers = 0
        while await self._line(reader) != b"\r\n":  # trailers: read and dropped
            trailers += 1
            if trailers > MAX_HEADERS:
                raise ProtocolError("too many trailers")

    async def _line(self, reader: asyncio.StreamReader) -> bytes:
        async with _io(self.timeout):
            try:
                return await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError:
                raise ProtocolError("chunk line too long") from None
            except asyncio.IncompleteReadError:
                raise ProtocolError("connection closed in a chunked body") from None

    async def aclose(self) -> None:
        if self.released:
            return
        self.released = True
        connection, self.connection = self.connection, None
        if connection is not None and not (self.complete and self.keep_alive):
            connection.close()
            connection = None
        self.client._release(self.key, connection)


# -- proxies


class _Proxy:
    __slots__ = ("authorization", "host", "key", "port")

    def __init__(self, url: str) -> None:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme.lower() != "http":
            raise RequestError(
                f"proxy scheme '{parts.scheme}' is not supported: give an http:// proxy"
            )
        try:
            port = parts.port
        except ValueError:
            raise RequestError(f"invalid port in the proxy address for {parts.hostname}") from None
        if not parts.hostname:
            raise RequestError("proxy address without a host")
        self.host = parts.hostname
        self.port = port or 80
        self.authorization: str | None = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            self.authorization = "Basic " + base64.b64encode(pair.encode()).decode("ascii")
        self.key = f"{self.host}:{self.port}"


class Proxies:
    """Which proxy, if any, a URL goes through.

    As in Go's `httpproxy` (what flux and the Flux controllers use): `HTTP_PROXY` for
    http:// URLs, `HTTPS_PROXY` for https:// URLs, the upper-case name before the lower-case
    one, a proxy address without a scheme taken as http://; `localhost` and loopback
    addresses never go through a proxy. `NO_PROXY` entries are comma-separated: `*` (no
    proxy at all), IP addresses, CIDR ranges, and domain names (`example.com` matches it
    and its subdomains, `.example.com` and `*.example.com` only the subdomains), each with
    an optional `:port`. `ALL_PROXY` is left alone, as Go leaves it: it often names a SOCKS
    proxy, which flux would not use either.
    """

    def __init__(self, http: str | None, https: str | None, no_proxy: str = "") -> None:
        self.http = http or None
        self.https = https or None
        self.no_proxy = [e.strip().lower() for e in no_proxy.split(",") if e.strip()]
        self._parsed: dict[str, _Proxy] = {}

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> Proxies:
        env = os.environ if environ is None else environ

        def first(name: str) -> str | None:
            return env.get(name.upper()) or env.get(name.lower()) or None

        return cls(first("http_proxy"), first("https_proxy"), first("no_proxy") or "")

    def select(self, url: _URL) -> _Proxy | None:
        address = self.https if url.scheme == "https" else self.http
        if address is None or not self._use_proxy(url.host, url.port):
            return None
        proxy = self._parsed.get(address)
        if proxy is None:
            proxy = self._parsed[address] = _Proxy(address)
        return proxy

    def _use_proxy(self, host: str, port: int) -> bool:
        import ipaddress  # here: only a configured proxy needs it

        host = host.lower().rstrip(".")
        try:
            ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
        except ValueError:
            ip = None
        if host == "localhost" or (ip is not None and ip.is_loopback):
            return False
        for entry in self.no_proxy:
            if entry == "*":
                return False
            if "/" in entry:
                try:
                    network = ipaddress.ip_network(entry, strict=False)
                except ValueError:
                    continue
                if ip is not None and ip in network:
                    return False
                continue
            name, wanted = _split_port(entry)
            if wanted is not None and wanted != port:
                continue
            try:
                listed = ipaddress.ip_address(name)
            except ValueError:
                pass
            else:
                if ip == listed:
                    return False
                continue
            if name.startswith("*."):
                name = name[1:]
            if name.startswith("."):
                if host.endswith(name):
                    return False
            elif host == name or host.endswith("." + name):
                return False
        return True


def _split_port(entry: str) -> tuple[str, int | None]:
    """`host:port`, `[v6]:port`, or a bare host or IPv6 address."""
    if entry.startswith("["):
        host, _, rest = entry[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    if entry.count(":") == 1:
        host, _, port = entry.partition(":")
        return host, int(port) if port.isdigit() else None
    return entry, None

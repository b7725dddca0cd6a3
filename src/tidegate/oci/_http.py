"""HTTP/1.1 for httpx on asyncio streams: the registry client's transport.

httpx's own transport runs on httpcore, anyio and h11: three more layers for every chunk
read, and about 40 ms of imports before a command line's first request. This one speaks
HTTP/1.1 directly on asyncio's streams, with what a registry conversation needs: keep-alive
connections per host, request bodies of known length or chunked, response bodies framed by
`Content-Length`, chunked or read to the end, and timeouts. Everything above it (URLs,
redirects, decoding, auth headers) is httpx's. URLs that go through a proxy configured in
the environment are not handled here: the registry client mounts httpx's own proxy
transports for them.

A peer breaking the protocol (malformed status line or headers, oversized heads, bodies
shorter than announced) ends the request with `httpx.RemoteProtocolError`, and the
connection is dropped.
"""

from __future__ import annotations

import asyncio
import os
import re
import ssl
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import httpx

# Limits on what a peer may send before the body: a head is the status line and headers.
MAX_HEAD = 64 << 10
MAX_HEADERS = 256
# Largest piece of body handed up at once, or sent before waiting for the peer to take it.
_READ = 1 << 20
# Connections kept open per host for the next request, and open at once overall.
_IDLE_PER_HOST = 8
_MAX_CONNECTIONS = 100

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) (\d{3})(?: ([^\r\n]*))?\r\n")
_HEADER = re.compile(rb"([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[ \t]*([^\r\n]*?)[ \t]*\r\n")
_CHUNK_SIZE = re.compile(rb"([0-9A-Fa-f]{1,15})[ \t]*(?:;[^\r\n]*)?\r\n")

_Key = tuple[str, str, int]  # scheme, host, port
_Head = tuple[int, int, bytes, list[tuple[bytes, bytes]]]  # version, status, reason, headers


class Transport(httpx.AsyncBaseTransport):
    """Plain HTTP, and HTTPS with the TLS context `tls` gives on first use (loading the
    system's CA certificates takes tens of milliseconds a plain-HTTP registry need not pay)."""

    def __init__(self, tls: Callable[[], ssl.SSLContext]) -> None:
        self._tls_factory = tls
        self._tls: ssl.SSLContext | None = None
        self._idle: dict[_Key, list[_Connection]] = {}
        self._slots = asyncio.Semaphore(_MAX_CONNECTIONS)
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout", {})
        url = request.url
        scheme = url.scheme
        if scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme '{scheme}'", request=request)
        key = (scheme, url.host, url.port or (443 if scheme == "https" else 80))
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no connection free in time", request=request) from None
        try:
            return await self._exchange(request, key, timeouts)
        except BaseException:
            self._slots.release()
            raise

    async def _exchange(
        self, request: httpx.Request, key: _Key, timeouts: dict[str, float | None]
    ) -> httpx.Response:
        # A kept-alive connection the server has meanwhile closed fails before any answer;
        # the request then goes once more on a new connection when its body can be re-sent.
        replayable = isinstance(request.stream, httpx.ByteStream)
        while True:
            connection = self._take_idle(key)
            reused = connection is not None
            if connection is None:
                connection = await _Connection.open(key, self._tls_for(key), timeouts, request)
            try:
                await connection.send(request, timeouts)
                version, status, reason, headers = await connection.read_head(timeouts, request)
                framing = _framing(request.method, status, headers, request)
            except httpx.TransportError:
                connection.close()
                if reused and replayable and connection.answered_nothing:
                    continue
                raise
            except BaseException:
                connection.close()
                raise
            break
        keep_alive = _keep_alive(version, headers, request)
        body = _Body(self, key, connection, framing, keep_alive, request, timeouts)
        return httpx.Response(
            status,
            headers=headers,
            stream=body,
            extensions={"http_version": b"HTTP/1.%d" % version, "reason_phrase": reason},
        )

    def _tls_for(self, key: _Key) -> ssl.SSLContext | None:
        if key[0] != "https":
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

    async def aclose(self) -> None:
        self._closed = True
        for idle in self._idle.values():
            for connection in idle:
                connection.close()
        self._idle.clear()


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.answered_nothing = True

    @classmethod
    async def open(
        cls,
        key: _Key,
        tls: ssl.SSLContext | None,
        timeouts: dict[str, float | None],
        request: httpx.Request,
    ) -> _Connection:
        _, host, port = key
        try:
            async with asyncio.timeout(timeouts.get("connect")):
                reader, writer = await asyncio.open_connection(
                    host, port, ssl=tls, server_hostname=host if tls else None, limit=MAX_HEAD
                )
        except TimeoutError:
            raise httpx.ConnectTimeout(f"timed out connecting to {host}:{port}",
                                       request=request) from None  # fmt: skip
        except OSError as exc:  # refused, unresolvable, TLS handshake failures
            raise httpx.ConnectError(_connect_failure(exc), request=request) from exc
        return cls(reader, writer)

    def usable(self) -> bool:
        """Whether the connection can carry another request (the server has not closed it)."""
        return not self.writer.transport.is_closing() and not self.reader.at_eof()

    def close(self) -> None:
        self.writer.close()

    async def send(self, request: httpx.Request, timeouts: dict[str, float | None]) -> None:
        url = request.url
        head = [b"%s %s HTTP/1.1\r\n" % (request.method.encode("ascii"), url.raw_path)]
        chunked = False
        for name, value in request.headers.raw:
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
                raise httpx.LocalProtocolError("header with a line break", request=request)
            head.append(b"%s: %s\r\n" % (name, value))
            if name.lower() == b"transfer-encoding" and value.lower() == b"chunked":
                chunked = True
        head.append(b"\r\n")
        # The write timeout applies to each MiB sent: a large upload over a slow link may take
        # longer than it, as long as it keeps moving.
        limit = timeouts.get("write")
        self.writer.write(b"".join(head))
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for piece in request.stream:
            if not piece:
                continue
            if chunked:
                self.writer.write(b"%x\r\n" % len(piece))
            view = memoryview(piece)
            for start in range(0, len(view), _READ):
                self.writer.write(view[start : start + _READ])
                async with _io(limit, request, write=True):
                    await self.writer.drain()
            if chunked:
                self.writer.write(b"\r\n")
        if chunked:
            self.writer.write(b"0\r\n\r\n")
        async with _io(limit, request, write=True):
            await self.writer.drain()

    async def read_head(self, timeouts: dict[str, float | None], request: httpx.Request) -> _Head:
        """Status and headers of the final answer (informational 1xx answers skipped)."""
        while True:
            async with _io(timeouts.get("read"), request):
                try:
                    raw = await self.reader.readuntil(b"\r\n\r\n")
                except asyncio.LimitOverrunError:
                    raise httpx.RemoteProtocolError(
                        f"response head larger than {MAX_HEAD} bytes", request=request
                    ) from None
                except asyncio.IncompleteReadError as exc:
                    if exc.partial:
                        self.answered_nothing = False
                        raise httpx.RemoteProtocolError(
                            "connection closed in the middle of the response head",
                            request=request,
                        ) from None
                    raise httpx.RemoteProtocolError(
                        "server closed the connection without answering", request=request
                    ) from None
            self.answered_nothing = False
            version, status, reason, headers = _parse_head(raw, request)
            if status == 101:
                raise httpx.RemoteProtocolError("unexpected protocol switch", request=request)
            if status >= 200:
                return version, status, reason, headers


def _parse_head(raw: bytes, request: httpx.Request) -> _Head:
    status_line = _STATUS_LINE.match(raw)
    if status_line is None:
        first = raw.split(b"\r\n", 1)[0][:80]
        raise httpx.RemoteProtocolError(f"malformed status line {first!r}", request=request)
    headers: list[tuple[bytes, bytes]] = []
    position = status_line.end()
    end = len(raw) - 2  # the blank line
    while position < end:
        header = _HEADER.match(raw, position)
        if header is None:
            line = raw[position:].split(b"\r\n", 1)[0][:80]
            raise httpx.RemoteProtocolError(f"malformed header line {line!r}", request=request)
        headers.append((header[1], header[2]))
        position = header.end()
        if len(headers) > MAX_HEADERS:
            raise httpx.RemoteProtocolError(
                f"more than {MAX_HEADERS} response headers", request=request
            )
    return int(status_line[1]), int(status_line[2]), status_line[3] or b"", headers


def _connect_failure(exc: OSError) -> str:
    """asyncio words a refused connection "Connect call failed ('host', port)": the system's
    own words say why."""
    if isinstance(exc, ssl.SSLError) or not exc.errno or exc.errno < 0:
        return str(exc) or type(exc).__name__
    return f"[Errno {exc.errno}] {os.strerror(exc.errno)}"


def _header(headers: list[tuple[bytes, bytes]], name: bytes) -> list[bytes]:
    return [value for key, value in headers if key.lower() == name]


def _keep_alive(version: int, headers: list[tuple[bytes, bytes]], request: httpx.Request) -> bool:
    tokens = {
        token.strip().lower()
        for value in _header(headers, b"connection") + request.headers.get_list("connection")
        for token in (value.encode("latin-1") if isinstance(value, str) else value).split(b",")
    }
    return version == 1 and b"close" not in tokens


# How a response body ends: ("none",), ("length", n), ("chunked",) or ("close",).
_Framing = tuple[str, int]


def _framing(
    method: str, status: int, headers: list[tuple[bytes, bytes]], request: httpx.Request
) -> _Framing:
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
            raise httpx.RemoteProtocolError(
                f"invalid Content-Length {sorted(lengths)!r}", request=request
            )
        return ("length", int(next(iter(lengths))))
    return ("close", 0)


@asynccontextmanager
async def _io(
    limit: float | None, request: httpx.Request, *, write: bool = False
) -> AsyncIterator[None]:
    """Socket errors and timeouts as httpx's exceptions."""
    try:
        async with asyncio.timeout(limit):
            yield
    except TimeoutError:
        if write:
            raise httpx.WriteTimeout("timed out sending", request=request) from None
        raise httpx.ReadTimeout("timed out waiting for the server", request=request) from None
    except (OSError, EOFError) as exc:
        failure = httpx.WriteError if write else httpx.ReadError
        raise failure(str(exc) or type(exc).__name__, request=request) from exc


class _Body(httpx.AsyncByteStream):
    """A response body as it arrives; its connection goes back to the pool once the body has
    been read to its end and closed."""

    def __init__(
        self,
        transport: Transport,
        key: _Key,
        connection: _Connection,
        framing: _Framing,
        keep_alive: bool,
        request: httpx.Request,
        timeouts: dict[str, float | None],
    ) -> None:
        self.transport = transport
        self.key = key
        self.connection: _Connection | None = connection
        self.framing = framing
        self.keep_alive = keep_alive and framing[0] != "close"
        self.request = request
        self.timeout = timeouts.get("read")
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
                async with _io(self.timeout, self.request):
                    data = await reader.read(min(left, _READ))
                if not data:
                    raise httpx.RemoteProtocolError(
                        f"connection closed after {length - left} of {length} body bytes",
                        request=self.request,
                    )
                left -= len(data)
                yield data
        elif kind == "chunked":
            async for data in self._chunks(reader):
                yield data
        else:
            while True:
                async with _io(self.timeout, self.request):
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
                raise httpx.RemoteProtocolError(
                    f"malformed chunk size line {size_line[:40]!r}", request=self.request
                )
            left = int(size[1], 16)
            if left == 0:
                break
            while left:
                async with _io(self.timeout, self.request):
                    data = await reader.read(min(left, _READ))
                if not data:
                    raise httpx.RemoteProtocolError(
                        "connection closed in the middle of a chunk", request=self.request
                    )
                left -= len(data)
                yield data
            if await self._line(reader) != b"\r\n":
                raise httpx.RemoteProtocolError("chunk without its line end", request=self.request)
        trailers = 0
        while await self._line(reader) != b"\r\n":  # trailers: read and dropped
            trailers += 1
            if trailers > MAX_HEADERS:
                raise httpx.RemoteProtocolError("too many trailers", request=self.request)

    async def _line(self, reader: asyncio.StreamReader) -> bytes:
        async with _io(self.timeout, self.request):
            try:
                return await reader.readuntil(b"\r\n")
            except asyncio.LimitOverrunError:
                raise httpx.RemoteProtocolError(
                    "chunk line too long", request=self.request
                ) from None
            except asyncio.IncompleteReadError:
                raise httpx.RemoteProtocolError(
                    "connection closed in a chunked body", request=self.request
                ) from None

    async def aclose(self) -> None:
        if self.released:
            return
        self.released = True
        connection, self.connection = self.connection, None
        if connection is not None and not (self.complete and self.keep_alive):
            connection.close()
            connection = None
        self.transport._release(self.key, connection)

"""The artifact HTTP server: files under the storage root, and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import stat
from pathlib import Path
from types import TracebackType
from urllib.parse import unquote

from aiohttp import web

_CHUNK = 256 << 10
_PORT = re.compile(r"[0-9]{1,5}")


class ArtifactServer:
    """Serves GET and HEAD for the files under `storage_root`, as source-controller's file
    server does, at `addr` ("host:port", ":port" for every interface; port 0 picks one).

    Anything else answers 404: folders (no listings), hidden files (writes in progress),
    `..` in any spelling, and symlinks that lead out of the root.
    """

    def __init__(self, storage_root: Path, addr: str = "127.0.0.1:9090") -> None:
        self.root = Path(os.path.abspath(storage_root))
        self.host, self.port = _parse_addr(addr)
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        """Listen; `port` is the bound port afterwards."""
        if self._runner is not None:
            raise RuntimeError("artifact server is already running")
        app = web.Application()
        app.router.add_get("/{path:.*}", self._serve)  # HEAD included
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        try:
            sock = await asyncio.to_thread(_bind, self.host, self.port)
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = sock.getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()

    async def __aenter__(self) -> ArtifactServer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()

    async def _serve(self, request: web.Request) -> web.StreamResponse:
        relative = _relative_path(request.raw_path)
        opened = await asyncio.to_thread(_open_inside, self.root, relative) if relative else None
        if opened is None:
            raise web.HTTPNotFound()
        fd, info = opened
        try:
            response = web.StreamResponse()
            response.content_length = info.st_size
            response.content_type = (
                "application/gzip"
                if relative and relative.endswith((".tar.gz", ".tgz"))
                else "application/octet-stream"
            )
            response.etag = f"{info.st_mtime_ns:x}-{info.st_size:x}"
            response.last_modified = info.st_mtime
            await response.prepare(request)
            if request.method != "HEAD":
                # Artifacts are replaced by rename, never rewritten: the open file stays whole.
                while chunk := await asyncio.to_thread(os.read, fd, _CHUNK):
                    await response.write(chunk)
            await response.write_eof()
            return response
        finally:
            os.close(fd)


def _parse_addr(addr: str) -> tuple[str | None, int]:
    host, colon, port = addr.rpartition(":")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError(f"invalid address '{addr}': put an IPv6 host in brackets")
    if not colon or not _PORT.fullmatch(port) or int(port) > 65535:
        raise ValueError(f"invalid address '{addr}': expected 'host:port' or ':port'")
    return host or None, int(port)


def _bind(host: str | None, port: int) -> socket.socket:
    """One listening socket: with port 0, a socket per address family would mean a port each.

    No host means every interface, IPv4 and IPv6 alike where the system has both.
    """
    if host is None:
        candidates: list[tuple[int, tuple[str, int]]] = [
            (socket.AF_INET6, ("::", port)),
            (socket.AF_INET, ("0.0.0.0", port)),
        ]
    else:
        candidates = [
            (family, (str(address[0]), port))
            for family, _, _, _, address in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        ]
    failure: OSError = OSError(f"no address to listen on for '{host}'")
    for family, address in candidates:
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and host is None:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            sock.bind(address)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            failure = exc
    raise failure


def _relative_path(raw_path: str) -> str | None:
    """The path a request asks for, relative to the root, or None if it is not one to serve.

    Works on the request target as sent, decoded once: no client or proxy normalisation
    decides what is served.
    """
    path = raw_path.split("?", 1)[0].split("#", 1)[0]
    if not path.startswith("/"):
        return None
    try:
        decoded = unquote(path[1:], errors="strict")
    except UnicodeDecodeError:
        return None
    parts = decoded.split("/")
    # Empty parts are folders or `//`; a leading dot covers `.`, `..` and hidden files.
    if any(not part or part.startswith(".") or "\\" in part or "\0" in part for part in parts):
        return None
    return "/".join(parts)


def _open_inside(root: Path, relative: str) -> tuple[int, os.stat_result] | None:
    """An open regular file at `relative`, if it and every link on the way stay in `root`."""
    try:
        real_root = os.path.realpath(root)
        target = os.path.realpath(os.path.join(real_root, relative))
        if target == real_root or os.path.commonpath([real_root, target]) != real_root:
            return None
        # O_NONBLOCK: a FIFO must not hang the open; it is refused just below.
        flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        fd = os.open(target, flags)
    except (OSError, ValueError):
        return None
    try:
        info = os.fstat(fd)
        if stat.S_ISREG(info.st_mode):
            os.set_blocking(fd, True)
            return fd, info
    except OSError:
        pass
    with contextlib.suppress(OSError):
        os.close(fd)
    return None

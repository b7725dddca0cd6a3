"""An HTTP proxy for tests: forwards absolute-form requests and tunnels `CONNECT`, records
what it was asked, and can demand credentials. Host names it is asked for are mapped to real
addresses first, so a client can only reach `registry.test` through it."""

from __future__ import annotations

import base64
import select
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import httpx
import pytest


def proxy_environment(monkeypatch: pytest.MonkeyPatch, **values: str) -> None:
    """Only the proxy variables given here are set (upper-case); the machine's are unset."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


@dataclass
class Proxy:
    url: str
    seen: list[str] = field(default_factory=list)  # "METHOD target" as asked
    credentials: list[str] = field(default_factory=list)  # Proxy-Authorization, decoded


@contextmanager
def http_proxy(hosts: dict[str, str], *, user: str | None = None) -> Iterator[Proxy]:
    """`hosts` maps `name:port` as clients ask for it to the `host:port` really connected to;
    with `user` ("name:password"), anything else than those credentials gets a 407."""
    proxy = Proxy("")

    def real(authority: str) -> str:
        return hosts.get(authority, authority)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def allowed(self) -> bool:
            given = self.headers.get("Proxy-Authorization", "")
            scheme, _, value = given.partition(" ")
            if given:
                proxy.credentials.append(base64.b64decode(value).decode() if scheme else given)
            if user is None or (scheme == "Basic" and base64.b64decode(value).decode() == user):
                return True
            self.send_response(407, "Proxy Authentication Required")
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return False

        def do_CONNECT(self) -> None:
            proxy.seen.append(f"CONNECT {self.path}")
            if not self.allowed():
                return
            host, _, port = real(self.path).rpartition(":")
            upstream = socket.create_connection((host, int(port)))
            self.send_response(200, "Connection established")
            self.end_headers()
            self.wfile.flush()
            relay(self.connection, upstream)
            self.close_connection = True

        def forward(self) -> None:
            proxy.seen.append(f"{self.command} {self.path}")
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not self.allowed():
                return
            parts = urlsplit(self.path)
            target = parts._replace(netloc=real(parts.netloc)).geturl()
            dropped = ("host", "proxy-authorization", "connection")
            headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
            answer = httpx.request(self.command, target, headers=headers, content=body,
                                   trust_env=False)  # fmt: skip
            self.send_response(answer.status_code)
            for key, value in answer.headers.items():
                if key.lower() not in ("content-length", "transfer-encoding", "connection"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.content)

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = forward

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    proxy.url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield proxy
    finally:
        server.shutdown()
        server.server_close()


def relay(client: socket.socket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes."""
    with upstream:
        sockets = [client, upstream]
        while True:
            readable, _, _ = select.select(sockets, [], [], 30)
            if not readable:
                return
            for source in readable:
                data = source.recv(1 << 16)
                if not data:
                    return
                (upstream if source is client else client).sendall(data)

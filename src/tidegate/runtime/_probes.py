"""HTTP endpoints for Prometheus (/metrics) and for the kubelet's probes (/healthz, /readyz)."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable

from aiohttp import web

from ._metrics import CONTENT_TYPE, Metrics

log = logging.getLogger(__name__)


def parse_address(address: str) -> tuple[str | None, int]:
    """`host:port` → (host, port); `:port` → (None, port), meaning every interface.
    IPv6 hosts go in brackets: `[::1]:8080`."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"invalid address {address!r}: expected host:port or :port")
    host = host.strip("[]")
    return (host or None), int(port)


class ProbeServer:
    """Serves GET /metrics on `metrics_addr`, and /healthz and /readyz on `health_addr`.

    /readyz answers 200 while `ready()` is true (always, if no `ready` is given) and 503
    otherwise; /healthz answers 200 while the process serves at all. An address of None turns
    that listener off. Port 0 picks a free port: read `metrics_port` / `health_port` after
    `start()`.
    """

    def __init__(
        self,
        metrics: Metrics,
        *,
        metrics_addr: str | None = "127.0.0.1:8080",
        health_addr: str | None = "127.0.0.1:9440",
        ready: Callable[[], bool] | None = None,
    ) -> None:
        self.metrics = metrics
        self.metrics_addr = metrics_addr
        self.health_addr = health_addr
        self.ready = ready
        self.metrics_port: int | None = None
        self.health_port: int | None = None
        self._runners: list[web.AppRunner] = []

    async def start(self) -> None:
        metrics_routes = [web.get("/metrics", self._metrics)]
        health_routes = [web.get("/healthz", self._healthz), web.get("/readyz", self._readyz)]
        listeners: list[tuple[str, list[web.RouteDef]]] = []
        if self.metrics_addr is not None and self.metrics_addr == self.health_addr:
            listeners.append((self.metrics_addr, metrics_routes + health_routes))
        else:
            if self.metrics_addr is not None:
                listeners.append((self.metrics_addr, metrics_routes))
            if self.health_addr is not None:
                listeners.append((self.health_addr, health_routes))
        try:
            for address, routes in listeners:
                port = await self._listen(address, routes)
                if any(route.path == "/metrics" for route in routes):
                    self.metrics_port = port
                if any(route.path == "/healthz" for route in routes):
                    self.health_port = port
        except BaseException:
            await self.stop()
            raise

    async def _listen(self, address: str, routes: list[web.RouteDef]) -> int:
        host, port = parse_address(address)
        app = web.Application()
        app.add_routes(routes)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        self._runners.append(runner)
        site: web.BaseSite
        if host is None:
            # One socket for every interface (dual-stack where possible), so that port 0
            # yields one port rather than one per address family.
            dual = socket.has_dualstack_ipv6()
            family = socket.AF_INET6 if dual else socket.AF_INET
            sock = socket.create_server(("", port), family=family, dualstack_ipv6=dual)
            site = web.SockSite(runner, sock)
        else:
            site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0][1]
        log.info("serving %s on %s", " ".join(r.path for r in routes), f"{host or ''}:{bound}")
        return int(bound)

    async def stop(self) -> None:
        runners, self._runners = self._runners, []
        for runner in runners:
            await runner.cleanup()

    async def __aenter__(self) -> ProbeServer:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _metrics(self, request: web.Request) -> web.Response:
        body = self.metrics.render().encode()
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def _healthz(self, request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def _readyz(self, request: web.Request) -> web.Response:
        try:
            ready = self.ready is None or bool(self.ready())
        except Exception:
            log.exception("readiness check failed")
            ready = False
        if ready:
            return web.Response(text="ok")
        return web.Response(status=503, text="not ready")

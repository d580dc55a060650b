"""The HTTP endpoint (aiohttp) on the address of the configuration's ``http`` section.

Routes:
- ``GET /metrics``: the gateway's metrics in the Prometheus text exposition format (version 0.0.4).
- ``GET /healthz``: 200 while the process is alive and its event loop answers.
- ``GET /readyz``: 200 when every readiness check passes; otherwise 503 with a small JSON body naming
  each part that is not ready and why (``{"ready": false, "not_ready": {"smsc": "..."}}``).

The operator console will live on the same ``app``: it adds its own routes (or a sub-application) to
:attr:`WebServer.app` before :meth:`WebServer.start`. Requests carry no body here; aiohttp's default
limits bound what a client may send.
"""

from __future__ import annotations

import socket
from collections.abc import Sequence

from aiohttp import web
from prometheus_client import generate_latest

from gateway.logs import get_logger
from gateway.metrics import GatewayMetrics
from gateway.web.health import Check, not_ready

log = get_logger("afgw.web")

#: Bytes a request (line, headers and body) may bring: nothing here takes a body.
_MAX_REQUEST = 16 * 1024
#: The classic text format, which every Prometheus reads (prometheus_client's newest default, 1.0.0,
#: differs only for names outside [a-zA-Z_:][a-zA-Z0-9_:]*, and ours are all inside).
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class WebServer:
    def __init__(self, host: str, port: int, metrics: GatewayMetrics, checks: Sequence[Check] = ()) -> None:
        self.host, self.requested_port = host, port
        self.metrics = metrics
        self.checks = list(checks)
        self.app = web.Application(client_max_size=_MAX_REQUEST)
        self.app.router.add_get("/metrics", self.serve_metrics)
        self.app.router.add_get("/healthz", self.serve_health)
        self.app.router.add_get("/readyz", self.serve_readiness)
        self._runner: web.AppRunner | None = None
        #: The port listened on (the requested one, or the one the system chose for port 0).
        self.port = 0

    async def start(self) -> None:
        runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await runner.setup()
        # Our own socket, so that port 0 (tests) tells which port it got.
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            sock.setblocking(False)
            site = web.SockSite(runner, sock)
            await site.start()
        except BaseException:
            sock.close()
            await runner.cleanup()
            raise
        self._runner = runner
        self.port = int(sock.getsockname()[1])
        log.info("http.listening", host=self.host, port=self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def serve_metrics(self, request: web.Request) -> web.Response:
        await self.metrics.refresh()
        body = generate_latest(self.metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})

    async def serve_health(self, request: web.Request) -> web.Response:
        return web.json_response({"alive": True})

    async def serve_readiness(self, request: web.Request) -> web.Response:
        problems = await not_ready(self.checks)
        if problems:
            return web.json_response({"ready": False, "not_ready": problems}, status=503)
        return web.json_response({"ready": True})

"""``/metrics`` (Prometheus) and the ASGI middleware that measures requests and tags them
with a request id.

``/metrics`` answers only loopback clients on the main listeners; with
``[admin] metrics_listener = "host:port"`` it is served by :func:`metrics_app`
on that listener instead (and the main listeners answer 404).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import Codes, MatrixError
from homeserver.logs import current_request_id, request_id_for
from homeserver.metrics import CONTENT_TYPE, Metrics

# A request forwarded by a reverse proxy on the same host comes from loopback too:
# it is refused when it carries the proxy's forwarding headers.
PROXY_HEADERS = ("x-forwarded-for", "forwarded", "x-real-ip")


class RequestMetricsMiddleware:
    """Counts and times each request by route template; sets the request id."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = dict(scope.get("headers", [])).get(b"x-request-id")
        request_id = request_id_for(header.decode("latin-1") if header else None)
        token = current_request_id.set(request_id)
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message["headers"] = [*message.get("headers", []), (b"x-request-id", request_id.encode())]
            await send(message)

        self.metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.metrics.in_flight.dec()
            route = scope.get("route")
            endpoint = getattr(route, "path", None) or "other"
            self.metrics.observe_request(scope["method"], endpoint, status, time.perf_counter() - started)
            current_request_id.reset(token)


def _is_loopback(host: str | None) -> bool:
    if host is None:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def _render(metrics: Metrics) -> Response:
    return Response(await metrics.render(), media_type=CONTENT_TYPE)


async def metrics(request: Request) -> Response:
    """GET /metrics (loopback clients only, unless served on its own listener)"""
    hs = request.app.state.hs
    if hs.config.admin.metrics_listener:
        raise MatrixError(404, Codes.UNRECOGNIZED, "Unrecognized request")
    proxied = any(h in request.headers for h in PROXY_HEADERS)
    if proxied or not _is_loopback(request.client.host if request.client else None):
        raise MatrixError(403, Codes.FORBIDDEN, "/metrics is only served to loopback clients")
    return await _render(hs.metrics)


def metrics_app(hs: Any) -> Starlette:
    """The ASGI app of the separate metrics listener (``[admin] metrics_listener``)."""

    async def endpoint(request: Request) -> Response:
        return await _render(hs.metrics)

    return Starlette(routes=[Route("/metrics", endpoint, methods=["GET"])])

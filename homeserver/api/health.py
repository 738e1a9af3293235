"""Liveness and readiness endpoints for load balancers (not part of the Matrix API)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response


async def health(request: Request) -> Response:
    """GET /health: the process is alive (no dependency is checked)."""
    return json_response({"status": "ok", "instance": request.app.state.hs.services.health.instance})


async def ready(request: Request) -> Response:
    """GET /ready: 200 when database, schema and Redis are fine and the instance accepts work, else 503."""
    service = request.app.state.hs.services.health
    checks = await service.readiness()
    ok = all(checks.values())
    return json_response(
        {"status": "ready" if ok else "unavailable", "instance": service.instance, "checks": checks},
        status=200 if ok else 503,
    )

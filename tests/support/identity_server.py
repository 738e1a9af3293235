"""A small identity server over HTTPS (Identity Service API v2: validated sessions,
``/3pid/bind``, ``/3pid/unbind``) that the homeserver under test talks to, as
SyTest's does.  It keeps its bindings in memory for the test to look at."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from homeserver.serving import serve_bounded
from homeserver.tls import ensure_dev_certificate
from tests.support.server import free_port


@dataclass
class IdentityServer:
    name: str
    ca_file: str
    access_token: str = "is-access-token"
    # sid -> (medium, address, client_secret): sessions the identity server validated.
    sessions: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    # (medium, address) -> mxid
    bindings: dict[tuple[str, str], str] = field(default_factory=dict)
    # Authorization headers of the unbind requests received.
    unbind_auth: list[str] = field(default_factory=list)
    unbind_bodies: list[dict[str, Any]] = field(default_factory=list)

    def validated(self, sid: str, medium: str, address: str, client_secret: str) -> None:
        self.sessions[sid] = (medium, address, client_secret)

    async def _bind(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization") != f"Bearer {self.access_token}":
            return JSONResponse({"errcode": "M_UNAUTHORIZED", "error": "bad token"}, 401)
        body = await request.json()
        session = self.sessions.get(body.get("sid"))
        if session is None or session[2] != body.get("client_secret"):
            return JSONResponse({"errcode": "M_NO_VALID_SESSION", "error": "no session"}, 400)
        medium, address, _ = session
        self.bindings[(medium, address)] = body["mxid"]
        return JSONResponse({"medium": medium, "address": address, "mxid": body["mxid"],
                             "not_before": 0, "not_after": 4582425849161, "ts": 0, "signatures": {}})

    async def _unbind(self, request: Request) -> JSONResponse:
        body = await request.json()
        self.unbind_auth.append(request.headers.get("authorization", ""))
        self.unbind_bodies.append(body)
        key = (body["threepid"]["medium"], body["threepid"]["address"])
        if self.bindings.get(key) != body.get("mxid"):
            return JSONResponse({"errcode": "M_NOT_FOUND", "error": "not bound"}, 404)
        del self.bindings[key]
        return JSONResponse({})


@contextlib.asynccontextmanager
async def serve_identity_server(tmp_path: Path) -> AsyncIterator[IdentityServer]:
    port = free_port()
    cert, key = ensure_dev_certificate(tmp_path, "localhost")
    server = IdentityServer(name=f"localhost:{port}", ca_file=cert)
    app = Starlette(routes=[
        Route("/_matrix/identity/v2/3pid/bind", server._bind, methods=["POST"]),
        Route("/_matrix/identity/v2/3pid/unbind", server._unbind, methods=["POST"]),
    ])
    hc = HypercornConfig()
    hc.bind = [f"127.0.0.1:{port}"]
    hc.certfile, hc.keyfile = cert, key
    hc.errorlog = hc.accesslog = None
    stop = asyncio.Event()
    task = asyncio.create_task(serve_bounded(app, hc, stop.wait))
    try:
        while True:  # up once it accepts connections
            if task.done():
                task.result()
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                break
            except OSError:
                await asyncio.sleep(0.02)
        yield server
    finally:
        stop.set()
        await asyncio.wait_for(task, 15)

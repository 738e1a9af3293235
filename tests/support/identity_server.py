"""A small identity server over HTTPS (Identity Service API v2: validated sessions,
``/3pid/bind``, ``/3pid/unbind``, hashed ``/lookup``, ``/store-invite``,
``/pubkey/isvalid``, and the homeserver's ``/3pid/onbind`` callback) that the
homeserver under test talks to, as SyTest's does.  It keeps its state in memory
for the test to look at."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from common.canonical_json import sign_json, unpadded_b64encode
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
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    # Public keys /pubkey/isvalid vouches for.
    valid_keys: set[str] = field(default_factory=set)
    pepper: str = "matrixrocks"
    # (medium, address) -> invites stored for it
    invites: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=dict)
    _tokens: Any = field(default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        self.valid_keys.add(self.public_key)

    @property
    def public_key(self) -> str:
        return unpadded_b64encode(self.key.public_key().public_bytes_raw())

    def rotate_key(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        self.valid_keys.add(self.public_key)

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        return sign_json(obj, self.name, "0", self.key)

    async def bind_and_notify(self, hs_base_url: str, medium: str, address: str, mxid: str) -> httpx.Response:
        """Bind, then tell the homeserver (``/_matrix/federation/v1/3pid/onbind``)."""
        self.bindings[(medium, address)] = mxid
        invites = []
        for invite in self.invites.get((medium, address), []):
            invites.append({**invite, "mxid": mxid, "signed": self.sign({"mxid": mxid, "token": invite["token"]})})
        body = self.sign({"medium": medium, "address": address, "mxid": mxid, "invites": invites})
        async with httpx.AsyncClient(base_url=hs_base_url) as client:
            return await client.post("/_matrix/federation/v1/3pid/onbind", json=body)

    def _authorised(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {self.access_token}"

    async def _hash_details(self, request: Request) -> JSONResponse:
        if not self._authorised(request):
            return JSONResponse({"errcode": "M_UNAUTHORIZED", "error": "bad token"}, 401)
        return JSONResponse({"algorithms": ["none", "sha256"], "lookup_pepper": self.pepper})

    async def _lookup(self, request: Request) -> JSONResponse:
        if not self._authorised(request):
            return JSONResponse({"errcode": "M_UNAUTHORIZED", "error": "bad token"}, 401)
        body = await request.json()
        if body.get("algorithm") != "sha256" or body.get("pepper") != self.pepper:
            return JSONResponse({"errcode": "M_INVALID_PEPPER", "error": "wrong pepper"}, 400)
        by_hash = {}
        for (medium, address), mxid in self.bindings.items():
            digest = hashlib.sha256(f"{address} {medium} {self.pepper}".encode()).digest()
            by_hash[base64.urlsafe_b64encode(digest).decode().rstrip("=")] = mxid
        return JSONResponse({"mappings": {h: by_hash[h] for h in body["addresses"] if h in by_hash}})

    async def _store_invite(self, request: Request) -> JSONResponse:
        if not self._authorised(request):
            return JSONResponse({"errcode": "M_UNAUTHORIZED", "error": "bad token"}, 401)
        body = await request.json()
        token = f"tok{next(self._tokens)}"
        self.invites.setdefault((body["medium"], body["address"]), []).append(
            {"room_id": body["room_id"], "sender": body["sender"], "token": token,
             "medium": body["medium"], "address": body["address"]})
        url = f"https://{self.name}/_matrix/identity/v2/pubkey/isvalid"
        return JSONResponse({"token": token, "display_name": "Bob", "public_key": self.public_key,
                             "public_keys": [{"public_key": self.public_key, "key_validity_url": url}]})

    async def _is_valid(self, request: Request) -> JSONResponse:
        return JSONResponse({"valid": request.query_params.get("public_key") in self.valid_keys})

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
        Route("/_matrix/identity/v2/hash_details", server._hash_details, methods=["GET"]),
        Route("/_matrix/identity/v2/lookup", server._lookup, methods=["POST"]),
        Route("/_matrix/identity/v2/store-invite", server._store_invite, methods=["POST"]),
        Route("/_matrix/identity/v2/pubkey/isvalid", server._is_valid, methods=["GET"]),
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

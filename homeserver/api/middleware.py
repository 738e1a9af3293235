"""Plain ASGI middleware: database context, body size limit, error rendering."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import Codes, MatrixError
from homeserver.storage.database import Database

logger = logging.getLogger(__name__)


class DatabaseContextMiddleware:
    """Activates this homeserver's Tortoise context for each request."""

    def __init__(self, app: ASGIApp, database: Database) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        with self.database.activated():
            await self.app(scope, receive, send)


class BodyTooLarge(MatrixError):
    def __init__(self, limit: int) -> None:
        super().__init__(413, Codes.TOO_LARGE, f"Request body is larger than {limit} bytes")


async def _send_json(send: Send, status: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


class BodyLimitMiddleware:
    """Refuses request bodies over the limit before reading them whole.

    A declared Content-Length over the limit is refused at once; a chunked
    body is counted as it arrives and refused when it passes the limit.
    Paths under ``exempt_prefixes`` (media uploads) enforce their own limits
    while streaming to disk.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, exempt_prefixes: tuple[str, ...] = (),
                 prefix_limits: tuple[tuple[str, int], ...] = ()) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes
        # Paths with a limit of their own (federation transactions).
        self.prefix_limits = prefix_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        max_bytes = next((limit for prefix, limit in self.prefix_limits if scope["path"].startswith(prefix)),
                         self.max_bytes)
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_json(send, 400, {"errcode": Codes.BAD_JSON, "error": "Invalid Content-Length"})
                    return
                if declared > max_bytes:
                    await _send_json(send, 413, _too_large(max_bytes))
                    return
        received = 0
        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > max_bytes:
                    raise BodyTooLarge(max_bytes)
            return message

        # Starlette's exception handler renders BodyTooLarge like any MatrixError.
        await self.app(scope, limited_receive, send)


def _too_large(limit: int) -> dict[str, Any]:
    return BodyTooLarge(limit).to_json()

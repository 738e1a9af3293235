"""Requests that meet a failing database: repeated when safe, else ``503`` with ``Retry-After``.

:class:`ReplayIdempotentRequests` runs an idempotent request again (``GET``,
``HEAD``, ``OPTIONS``, ``PUT``, ``DELETE``: Matrix makes every ``PUT`` safe to
repeat, e.g. ``/send/{txnId}``) when it failed on a transient database error
before any byte of the answer was sent.  Its body is buffered for the
repeat; media uploads are never buffered (they stream to disk).
"""

from __future__ import annotations

import asyncio
import logging
import random

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import Codes, MatrixError
from homeserver.storage.retry import RETRY_AFTER_S, is_transient

logger = logging.getLogger(__name__)

IDEMPOTENT_METHODS = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}


def storage_unavailable() -> MatrixError:
    return MatrixError(
        503, Codes.UNKNOWN, "The database is unavailable; try again shortly",
        extra={"retry_after_ms": RETRY_AFTER_S * 1000},
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


class ReplayIdempotentRequests:
    def __init__(self, app: ASGIApp, attempts: int = 3, never_buffer_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.attempts = attempts
        self.never_buffer_prefixes = never_buffer_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in IDEMPOTENT_METHODS:
            await self.app(scope, receive, send)
            return
        if scope["method"] in ("PUT", "DELETE") and scope["path"].startswith(self.never_buffer_prefixes):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        started = False
        body_given = False

        async def replay_receive() -> Message:
            # The body once per attempt; after it, what the client does (e.g. disconnect).
            nonlocal body_given
            if body_given:
                return await receive()
            body_given = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        for attempt in range(1, self.attempts + 1):
            body_given = False
            try:
                await self.app(scope, replay_receive, tracking_send)
                return
            except Exception as exc:
                if started or attempt == self.attempts or not is_transient(exc):
                    raise
                logger.warning("%s %s met a database failure (%s); repeating it",
                               scope["method"], scope["path"], exc)
                await asyncio.sleep(random.uniform(0.05, 0.25) * attempt)


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)

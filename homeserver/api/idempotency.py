"""Plain ASGI middleware: a client-API ``POST`` repeated with its ``Idempotency-Key`` is applied once.

The rules live in :mod:`homeserver.services.idempotency`; this layer reads
what they need from the request (the key, the access token, a digest of the
body) and holds the first attempt's answer back until it is stored, so an
answer lost on its way to the client (the connection died after the server
acted) always has its copy for the repeat.

Logged-in requests are fingerprinted while their body streams through (a
media upload is never buffered); requests without a login are read whole
first (the body limit bounds them), because their body is part of the key.
"""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import parse_qs, parse_qsl, urlencode

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from common.errors import MatrixError
from homeserver.api.http import error_response
from homeserver.services.auth import TokenService
from homeserver.services.idempotency import (
    Answer,
    Claim,
    IdempotencyService,
    digest,
    key_reused,
    parse_key,
    still_in_flight,
)

logger = logging.getLogger(__name__)

PREFIXES = ("/_matrix/client/", "/_matrix/media/")
MEDIA_PREFIX = "/_matrix/media/"
# POSTs that only read, or only set a position (receipts, read markers): a repeat
# changes nothing, so no row is written for them.
EXEMPT_SUFFIXES = ("/keys/query", "/user_directory/search", "/publicRooms", "/search", "/read_markers")
# Larger answers are passed on without being kept (a repeat then runs afresh).
MAX_KEPT_BYTES = 64 * 1024
_NOT_REPLAYED = {b"content-length", b"date", b"server"}
ANONYMOUS = "anonymous"
# What a repeat that met the first attempt still running is told to wait.
RETRY_IN_FLIGHT_MS = 1000


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp, service: IdempotencyService, tokens: TokenService) -> None:
        self.app = app
        self.service = service
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        raw = _key_header(scope)
        if raw is None:
            await self.app(scope, receive, send)
            return
        try:
            key = parse_key(raw)
        except MatrixError as exc:
            await _send_error(send, exc)
            return
        owner = await self.tokens.owner(_access_token(scope))
        if owner is not None:
            await _Exchange(self, scope, receive, send, f"user {owner[0]} {owner[1]}", key).logged_in()
        elif not scope["path"].startswith(MEDIA_PREFIX):
            await _Exchange(self, scope, receive, send, ANONYMOUS, key).anonymous()
        else:
            await self.app(scope, receive, send)  # uploads need a login: the handler refuses this one


class _Exchange:
    """One request under an Idempotency-Key."""

    def __init__(self, mw: IdempotencyMiddleware, scope: Scope, receive: Receive, send: Send,
                 owner: str, key: str) -> None:
        self.app, self.service = mw.app, mw.service
        self.scope, self.receive, self.send = scope, receive, send
        self.owner, self.key = owner, key
        self.hasher = hashlib.sha256()
        self.body_done = False

    def fingerprint(self) -> str:
        return fingerprint(self.scope, self.hasher.digest())

    async def _hashed_receive(self) -> Message:
        message = await self.receive()
        if message["type"] == "http.request":
            self.hasher.update(message.get("body", b""))
            if not message.get("more_body", False):
                self.body_done = True
        return message

    async def _read_rest(self) -> bool:
        """Read (and hash) what is left of the body; False when the client went away first."""
        while not self.body_done:
            if (await self._hashed_receive())["type"] == "http.disconnect":
                return False
        return True

    # ------------------------------------------------------------ the two scopes
    async def logged_in(self) -> None:
        lookup = self.service.lookup(self.owner, self.key, None)
        while True:
            outcome = await self.service.begin(lookup)
            if isinstance(outcome, Claim):
                await self._first(lookup, outcome, None, None)
                return
            row = outcome if outcome.answered else await self.service.wait(lookup)
            if row is None:
                continue  # the first attempt produced nothing to keep: run this one
            if not row.answered:
                await _send_error(self.send, still_in_flight(RETRY_IN_FLIGHT_MS))
                return
            try:
                if not await self._read_rest():
                    return
            except MatrixError as exc:
                await _send_error(self.send, exc)
                return
            fingerprint = self.fingerprint()
            if row.fingerprint != fingerprint:
                await _send_error(self.send, key_reused())
                return
            await self._replay(self.service.open(row, lookup, self.owner, self.key, fingerprint))
            return

    async def anonymous(self) -> None:
        chunks = []
        try:
            while not self.body_done:
                message = await self._hashed_receive()
                if message["type"] == "http.disconnect":
                    return
                chunks.append(message.get("body", b""))
        except MatrixError as exc:  # too large, or too slow
            await _send_error(self.send, exc)
            return
        fingerprint = self.fingerprint()
        lookup = self.service.lookup(self.owner, self.key, fingerprint)
        while True:
            outcome = await self.service.begin(lookup)
            if isinstance(outcome, Claim):
                await self._first(lookup, outcome, fingerprint, b"".join(chunks))
                return
            row = outcome if outcome.answered else await self.service.wait(lookup)
            if row is None:
                continue
            if not row.answered:
                await _send_error(self.send, still_in_flight(RETRY_IN_FLIGHT_MS))
                return
            await self._replay(self.service.open(row, lookup, self.owner, self.key, fingerprint))
            return

    # ------------------------------------------------------------ the first attempt
    async def _first(self, lookup: str, claim: Claim, fingerprint: str | None, body: bytes | None) -> None:
        held: Message | None = None
        chunks: list[bytes] = []
        size = 0
        settled = False  # stored, or released

        async def inner_receive() -> Message:
            nonlocal body
            if body is not None:
                message: Message = {"type": "http.request", "body": body, "more_body": False}
                body = None
                return message
            if fingerprint is not None:
                return await self.receive()  # only the disconnect notice is left
            return await self._hashed_receive()

        async def inner_send(message: Message) -> None:
            nonlocal held, size, settled
            if settled:
                await self.send(message)
            elif message["type"] == "http.response.start":
                held = message
            elif message["type"] == "http.response.body" and held is not None:
                chunks.append(message.get("body", b""))
                size += len(chunks[-1])
                more = bool(message.get("more_body", False))
                if more and size <= MAX_KEPT_BYTES:
                    return
                if size > MAX_KEPT_BYTES:
                    await self.service.release(lookup, claim)
                else:
                    await self._settle(lookup, claim, fingerprint, held, b"".join(chunks))
                settled = True
                await self.send(held)
                await self.send({"type": "http.response.body", "body": b"".join(chunks), "more_body": more})
            else:
                await self.send(message)

        try:
            await self.app(self.scope, inner_receive, inner_send)
        finally:
            if not settled:
                await self.service.release(lookup, claim)

    async def _settle(self, lookup: str, claim: Claim, fingerprint: str | None, start: Message,
                      body: bytes) -> None:
        """Store a 2xx answer before it leaves; release the key for anything else."""
        status = int(start["status"])
        try:
            if 200 <= status < 300 and (fingerprint is not None or await self._read_rest()):
                headers = [(n, v) for n, v in start.get("headers", []) if n.lower() not in _NOT_REPLAYED]
                await self.service.complete(lookup, claim, self.owner, self.key,
                                            fingerprint or self.fingerprint(), Answer(status, headers, body))
            else:
                await self.service.release(lookup, claim)
        except Exception:
            # The answer still goes out; only a repeat of this request would run again.
            logger.warning("could not keep the answer of %s %s for its Idempotency-Key",
                           self.scope["method"], self.scope["path"], exc_info=True)

    async def _replay(self, answer: Answer) -> None:
        headers = [*answer.headers, (b"content-length", str(len(answer.body)).encode()),
                   (b"idempotent-replayed", b"true")]
        await self.send({"type": "http.response.start", "status": answer.status, "headers": headers})
        await self.send({"type": "http.response.body", "body": answer.body})


def fingerprint(scope: Scope, body_sha256: bytes) -> str:
    """What the request asks: method, path, query, content type and body (not who asks)."""
    content_type = next((v for n, v in scope.get("headers", []) if n == b"content-type"), b"")
    query = [(k, v) for k, v in parse_qsl(scope.get("query_string", b"").decode("latin-1"),
                                            keep_blank_values=True) if k != "access_token"]
    return digest([scope["method"].encode(), scope["path"].encode("utf-8", "surrogateescape"),
                   urlencode(query).encode(), content_type, body_sha256])


def _key_header(scope: Scope) -> bytes | None:
    """The Idempotency-Key of a POST this middleware looks after, else None."""
    if scope["type"] != "http" or scope["method"] != "POST":
        return None
    path: str = scope["path"]
    if not path.startswith(PREFIXES) or path.endswith(EXEMPT_SUFFIXES) or "/receipt/" in path:
        return None
    return next((v for n, v in scope.get("headers", []) if n == b"idempotency-key"), None)


def _access_token(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            kind, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if kind.lower() == "bearer" else None
    tokens = parse_qs(scope.get("query_string", b"").decode("latin-1")).get("access_token")
    return tokens[0] if tokens else None


async def _send_error(send: Send, error: MatrixError) -> None:
    response = error_response(error)
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})

"""A repeat that meets its first attempt still running: it waits (on any instance), or gets 409.

Two tiny apps (the real middleware and service, a real database shared by
both, as two instances of one deployment would share it) around a handler
that stays in flight until the test lets it go.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from homeserver.api.idempotency import MAX_KEPT_BYTES, IdempotencyMiddleware, fingerprint
from homeserver.api.middleware import DatabaseContextMiddleware
from homeserver.services.auth import TokenService
from homeserver.services.clock import Clock, ManualClock
from homeserver.services.idempotency import LEASE_MS, IdempotencyService
from homeserver.storage.accounts import DeviceRepository, TokenRepository
from homeserver.storage.database import Database
from homeserver.storage.idempotency import IdempotencyRepository

PATH = "/_matrix/client/v3/slow"


@dataclass
class Gate:
    """The handler: counts its runs and holds each until ``go`` is set."""

    calls: int = 0
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    go: asyncio.Event = field(default_factory=asyncio.Event)
    status: int = 200

    async def handle(self, request: Request) -> Response:
        body = await request.body()
        self.calls += 1
        run = self.calls
        self.entered.set()
        await self.go.wait()
        return JSONResponse({"run": run, "body": body.decode()}, status_code=self.status)


@dataclass
class Instance:
    client: httpx.AsyncClient
    service: IdempotencyService
    tokens: TokenService


Deployment = Callable[..., Awaitable[Instance]]


@pytest.fixture
async def deployment(database_url: str) -> AsyncIterator[Deployment]:
    server_name = f"t{secrets.token_hex(4)}.localhost"
    async with AsyncExitStack() as stack:
        async def instance(gate: Gate, wait_ms: int = 30_000, clock: Clock | None = None) -> Instance:
            db = Database(database_url)
            await db.open()
            stack.push_async_callback(db.close)
            clock = clock or Clock()
            service = IdempotencyService(IdempotencyRepository(db), clock, server_name, 86_400_000, wait_ms)
            tokens = TokenService(TokenRepository(db), DeviceRepository(db), clock)
            app = Starlette(routes=[Route(PATH, gate.handle, methods=["POST"])], middleware=[
                Middleware(DatabaseContextMiddleware, database=db),
                Middleware(IdempotencyMiddleware, service=service, tokens=tokens),
            ])
            client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hs")
            stack.push_async_callback(client.aclose)
            return Instance(client, service, tokens)

        yield instance


async def until(predicate: Callable[[], Any], what: str) -> None:
    for _ in range(3000):  # a liveness bound (30 s), not a timing assertion
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"gave up waiting for {what}")


async def _headers(instance: Instance, logged_in: bool, key: str) -> dict[str, str]:
    headers = {"Idempotency-Key": key}
    if logged_in:
        with instance.service.repo.db.activated():
            token = await instance.tokens.issue(f"@u{secrets.token_hex(3)}:x", "DEVICE")
        headers["Authorization"] = f"Bearer {token}"
    return headers


@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
async def test_a_repeat_on_another_instance_waits_for_the_first_answer(
    deployment: Deployment, logged_in: bool,
) -> None:
    gate = Gate()
    a, b = await deployment(gate), await deployment(gate)
    headers = await _headers(a, logged_in, secrets.token_urlsafe(16))
    first = asyncio.create_task(a.client.post(PATH, content=b"hello", headers=headers))
    await gate.entered.wait()
    repeat = asyncio.create_task(b.client.post(PATH, content=b"hello", headers=headers))
    await until(lambda: b.service.waiting == 1, "the repeat to wait")
    gate.go.set()
    answers = await asyncio.gather(first, repeat)
    assert [r.status_code for r in answers] == [200, 200]
    assert answers[0].json() == answers[1].json() == {"run": 1, "body": "hello"}
    assert "idempotent-replayed" not in answers[0].headers
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert gate.calls == 1 and b.service.waiting == 0


async def test_past_its_wait_a_repeat_gets_409_and_later_the_answer(deployment: Deployment) -> None:
    gate = Gate()
    a, impatient = await deployment(gate), await deployment(gate, wait_ms=0)
    headers = {"Idempotency-Key": secrets.token_urlsafe(16)}
    first = asyncio.create_task(a.client.post(PATH, content=b"x", headers=headers))
    await gate.entered.wait()
    busy = await impatient.client.post(PATH, content=b"x", headers=headers)
    assert busy.status_code == 409
    assert busy.json()["errcode"] == "M_UNKNOWN" and busy.json()["retry_after_ms"] > 0
    assert int(busy.headers["retry-after"]) >= 1
    gate.go.set()
    assert (await first).status_code == 200
    later = await impatient.client.post(PATH, content=b"x", headers=headers)
    assert later.json() == {"run": 1, "body": "x"} and later.headers["idempotent-replayed"] == "true"
    assert gate.calls == 1


async def test_when_the_first_attempt_fails_the_waiting_repeat_runs(deployment: Deployment) -> None:
    gate = Gate(status=503)
    a, b = await deployment(gate), await deployment(gate)
    headers = {"Idempotency-Key": secrets.token_urlsafe(16)}
    first = asyncio.create_task(a.client.post(PATH, content=b"x", headers=headers))
    await gate.entered.wait()
    repeat = asyncio.create_task(b.client.post(PATH, content=b"x", headers=headers))
    await until(lambda: b.service.waiting == 1, "the repeat to wait")
    gate.go.set()
    assert (await first).status_code == 503  # not kept: the key is free again
    gate.status = 200
    second = await repeat
    assert second.status_code == 200 and second.json()["run"] == 2
    assert "idempotent-replayed" not in second.headers


async def test_a_first_attempt_that_died_holds_its_key_for_its_lease_only(deployment: Deployment) -> None:
    clock = ManualClock()
    gate = Gate()
    gate.go.set()
    survivor = await deployment(gate, wait_ms=0, clock=clock)
    key = secrets.token_urlsafe(16)
    service = survivor.service
    # An instance claimed the key and crashed: its lease is all that is left of it.
    with service.repo.db.activated():
        await service.begin(service.lookup("anonymous", key, _anonymous_fingerprint(b"x")))
    headers = {"Idempotency-Key": key}
    assert (await survivor.client.post(PATH, content=b"x", headers=headers)).status_code == 409
    clock.advance(LEASE_MS)
    answer = await survivor.client.post(PATH, content=b"x", headers=headers)
    assert answer.status_code == 200 and gate.calls == 1


def _anonymous_fingerprint(body: bytes) -> str:
    scope = {"method": "POST", "path": PATH, "query_string": b"", "headers": []}
    return fingerprint(scope, hashlib.sha256(body).digest())


async def test_an_answer_too_large_to_keep_goes_out_whole_and_unkept(deployment: Deployment) -> None:
    gate = Gate()
    gate.go.set()
    instance = await deployment(gate)
    big = b"x" * (MAX_KEPT_BYTES + 1)
    headers = {"Idempotency-Key": secrets.token_urlsafe(16)}
    answers = [await instance.client.post(PATH, content=big, headers=headers) for _ in range(2)]
    assert [a.json() for a in answers] == [{"run": 1, "body": big.decode()}, {"run": 2, "body": big.decode()}]
    assert not any("idempotent-replayed" in a.headers for a in answers)

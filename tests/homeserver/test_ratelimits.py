"""Rate limits trigger, answer M_LIMIT_EXCEEDED with retry_after_ms, and reset."""

from __future__ import annotations

from typing import Any

import pytest

from homeserver.services.clock import ManualClock
from tests.support.redis import require_redis
from tests.support.server import serve_homeserver

COUNTER_BACKENDS = ["database", "redis"]


def _limits(backend: str, **limits: int) -> dict[str, Any]:
    overrides: dict[str, Any] = {"rate_limits": limits}
    if backend == "redis":
        overrides["redis_url"] = require_redis()
    return overrides


@pytest.mark.parametrize("backend", COUNTER_BACKENDS)
async def test_registration_limit_triggers_and_resets(make_config: Any, backend: str) -> None:
    clock = ManualClock(start_ms=1_800_000_000_000)
    config = make_config(**_limits(backend, register_per_minute=3))
    async with serve_homeserver(config, clock=clock) as server:
        for i in range(3):
            ok = await server.api("POST", "register", json={"username": f"u{i}", "password": "long enough pw"})
            assert ok.status_code == 401  # first stage of the flow, counted
        limited = await server.api("POST", "register", json={"username": "u9", "password": "long enough pw"})
        assert limited.status_code == 429
        body = limited.json()
        assert body["errcode"] == "M_LIMIT_EXCEEDED"
        assert 0 < body["retry_after_ms"] <= 60_000
        assert limited.headers["Retry-After"]
        clock.advance(body["retry_after_ms"])
        again = await server.api("POST", "register", json={"username": "u9", "password": "long enough pw"})
        assert again.status_code == 401


@pytest.mark.parametrize("backend", COUNTER_BACKENDS)
async def test_login_limit_per_account_and_ip(make_config: Any, backend: str) -> None:
    clock = ManualClock(start_ms=1_800_000_000_000)
    config = make_config(**_limits(backend, login_per_minute=10))
    async with serve_homeserver(config, clock=clock) as server:
        await server.register("alice", password="alice password")
        statuses = []
        for _ in range(11):
            response = await server.api("POST", "login", json={
                "type": "m.login.password", "user": "alice", "password": "guess"})
            statuses.append(response.status_code)
        assert statuses[:10] == [403] * 10
        assert statuses[10] == 429
        # Even the right password is refused while limited (no oracle for guessing).
        right = await server.api("POST", "login", json={
            "type": "m.login.password", "user": "alice", "password": "alice password"})
        assert right.status_code == 429
        clock.advance(60_000)
        right = await server.api("POST", "login", json={
            "type": "m.login.password", "user": "alice", "password": "alice password"})
        assert right.status_code == 200


async def test_stale_counters_are_cleaned_up(make_config: Any) -> None:
    clock = ManualClock(start_ms=1_800_000_000_000)
    config = make_config(rate_limits={"login_per_minute": 5})
    async with serve_homeserver(config, clock=clock) as server:
        await server.api("POST", "login", json={"type": "m.login.password", "user": "x", "password": "y"})
        db = server.hs.database
        with db.activated():
            prefix = f"{config.server_name}|%"
            before = await db.fetch("SELECT bucket FROM rate_limits WHERE bucket LIKE ?", (prefix,))
            assert before
            clock.advance(2 * 3_600_000)
            await server.hs.services.limiter.cleanup()
            after = await db.fetch("SELECT bucket FROM rate_limits WHERE bucket LIKE ?", (prefix,))
        assert after == []

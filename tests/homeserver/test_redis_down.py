"""An unreachable Redis: requests are served (counters fall back to the database), not 500."""

from __future__ import annotations

from typing import Any

from tests.support.server import free_port, serve_homeserver


async def test_requests_succeed_and_limits_hold_while_redis_is_unreachable(make_config: Any) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    config = make_config(redis_url=dead, rate_limits={"login_per_minute": 3})
    async with serve_homeserver(config) as server:
        alice = await server.register("alice")
        assert (await server.api("GET", "account/whoami", alice)).status_code == 200
        sent = await server.api("PUT", "sendToDevice/m.x/t1", alice, json={"messages": {}})
        assert sent.status_code == 200
        statuses = []
        for _ in range(4):
            response = await server.api("POST", "login", json={
                "type": "m.login.password", "user": "alice", "password": "wrong password"})
            statuses.append(response.status_code)
        # The failed-login limit still counts (in the database) while Redis is away.
        assert statuses == [403, 403, 403, 429]
        sync = await server.api("GET", "sync", alice, params={"timeout": 0})
        assert sync.status_code == 200

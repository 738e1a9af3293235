"""Registration is counted on every attempt; failed logins are limited per (account, address).

Before: a first /register request carrying ``auth`` skipped the registration
limit, and ten wrong passwords a minute from anywhere locked the owner out
of password login.
"""

from __future__ import annotations

from typing import Any

import httpx

from homeserver.services.clock import ManualClock
from tests.support.server import RunningServer, serve_homeserver


def _from(server: RunningServer, address: str) -> httpx.AsyncClient:
    """A client whose requests come from another loopback address."""
    transport = httpx.AsyncHTTPTransport(local_address=address)
    return httpx.AsyncClient(base_url=server.base_url, transport=transport, timeout=30)


async def test_one_shot_registrations_count_towards_the_limit(make_config: Any) -> None:
    config = make_config(rate_limits={"register_per_minute": 3})
    async with serve_homeserver(config, clock=ManualClock(start_ms=1_800_000_000_000)) as server:
        statuses = []
        for i in range(4):
            response = await server.api("POST", "register", json={
                "username": f"oneshot{i}", "password": "long enough pw", "auth": {"type": "m.login.dummy"}})
            statuses.append(response.status_code)
        assert statuses == [200, 200, 200, 429]


async def test_registration_attempts_with_made_up_sessions_are_counted(make_config: Any) -> None:
    config = make_config(rate_limits={"register_per_minute": 3})
    async with serve_homeserver(config, clock=ManualClock(start_ms=1_800_000_000_000)) as server:
        statuses = []
        for i in range(10):
            response = await server.api("POST", "register", json={
                "username": f"s{i}", "password": "long enough pw",
                "auth": {"type": "m.login.dummy", "session": f"made-up-{i}"}})
            statuses.append(response.status_code)
        assert 429 not in statuses[:9] and statuses[9] == 429


async def test_wrong_passwords_from_elsewhere_do_not_lock_the_owner_out(make_config: Any) -> None:
    config = make_config(rate_limits={"login_per_minute": 5, "login_failures_per_account_per_hour": 12})
    clock = ManualClock(start_ms=1_800_000_000_000)
    async with serve_homeserver(config, clock=clock) as server:
        await server.register("owner", password="owner password")
        wrong = {"type": "m.login.password", "user": "owner", "password": "guess"}
        right = {**wrong, "password": "owner password"}
        async with _from(server, "127.0.0.2") as attacker, _from(server, "127.0.0.3") as owner:
            statuses = [(await attacker.post("/_matrix/client/v3/login", json=wrong)).status_code
                        for _ in range(6)]
            assert statuses == [403] * 5 + [429]
            # The attacker's address is limited, even with the right password ...
            assert (await attacker.post("/_matrix/client/v3/login", json=right)).status_code == 429
            # ... the owner, elsewhere, logs in.
            assert (await owner.post("/_matrix/client/v3/login", json=right)).status_code == 200
            # Spread over addresses, failures meet the slower per-account ceiling.
            async with _from(server, "127.0.0.4") as second, _from(server, "127.0.0.5") as third:
                for client in (second, third):
                    for _ in range(5):
                        await client.post("/_matrix/client/v3/login", json=wrong)
            ceiling = await owner.post("/_matrix/client/v3/login", json=right)
            assert ceiling.status_code == 429 and ceiling.json()["errcode"] == "M_LIMIT_EXCEEDED"
            clock.advance(3_600_000)
            assert (await owner.post("/_matrix/client/v3/login", json=right)).status_code == 200

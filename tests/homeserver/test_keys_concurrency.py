"""One-time keys are handed out at most once under concurrent claims (one and two instances)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.homeserver.test_keys import PARLEY_OTK, grant, upload_device
from tests.support.server import Account, RunningServer, serve_homeserver

KEYS = 20
CLAIMS = 50


async def _claim_all(servers: list[RunningServer], claimers: list[Account], owner: Account) -> list[Any]:
    body = {"one_time_keys": {owner.user_id: {owner.device_id: PARLEY_OTK}}}

    async def claim(i: int) -> Any:
        response = await servers[i % len(servers)].api("POST", "keys/claim", claimers[i % len(claimers)], json=body)
        assert response.status_code == 200, response.text
        return response.json()["one_time_keys"].get(owner.user_id, {}).get(owner.device_id)

    return list(await asyncio.gather(*(claim(i) for i in range(CLAIMS))))


def _check(results: list[Any], uploaded: int) -> None:
    handed_out = [r for r in results if r]
    key_ids = [key_id for r in handed_out for key_id in r]
    assert len(handed_out) == uploaded
    assert len(set(key_ids)) == uploaded  # no key twice
    assert results.count(None) == CLAIMS - uploaded


async def test_fifty_concurrent_claims_for_twenty_keys(server: RunningServer) -> None:
    owner = await server.register("owner")
    claimers = [await server.register(f"claimer{i}") for i in range(5)]
    for claimer in claimers:
        await grant(server, claimer, owner)
    await upload_device(server, owner, otks=KEYS)
    _check(await _claim_all([server], claimers, owner), KEYS)
    counts = await server.hs.services.keys.one_time_key_counts(owner.user_id, owner.device_id)
    assert counts.get(PARLEY_OTK, 0) == 0


async def test_concurrent_claims_across_two_instances(server: RunningServer, make_config: Any) -> None:
    second_config = make_config(server_name=server.config.server_name)
    async with serve_homeserver(second_config) as second:
        owner = await server.register("owner")
        claimers = [await server.register(f"claimer{i}") for i in range(4)]
        for claimer in claimers:
            await grant(server, claimer, owner)
        await upload_device(server, owner, otks=KEYS)
        _check(await _claim_all([server, second], claimers, owner), KEYS)

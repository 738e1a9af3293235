"""Other servers query and claim our users' keys (user/keys/query, user/keys/claim, user/devices)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from homeserver.federation.errors import RemoteError
from tests.homeserver.federation.test_joins import create_room
from tests.homeserver.test_keys import PARLEY_OTK, login, upload_device
from tests.support.federation import Cluster, cluster
from tests.support.room_sync import Syncer, joined
from tests.support.server import Account, RunningServer

H1, H2 = "hs1.localhost", "hs2.localhost"
F1 = "/_matrix/federation/v1"


async def test_keys_and_devices_for_a_server_that_may_see_them(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    ident = await upload_device(hs2, bob, otks=3)
    client = hs1.hs.federation.client

    async def ask(method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        with hs1.hs.database.activated():
            return await client.request(H2, method, F1 + path, json=body)

    query = {"device_keys": {bob.user_id: []}}
    claim = {"one_time_keys": {bob.user_id: {bob.device_id: PARLEY_OTK}}}
    # hs1's users share no room with Bob and never looked him up: nothing.
    assert (await ask("POST", "/user/keys/query", query))["device_keys"] == {bob.user_id: {}}
    assert (await ask("POST", "/user/keys/claim", claim))["one_time_keys"] == {}
    assert (await ask("GET", f"/user/devices/{bob.user_id}"))["devices"] == []

    await hs2.hs.services.keys.grant_lookup(alice.user_id, bob.user_id)  # what an e-mail lookup does
    keys = (await ask("POST", "/user/keys/query", query))["device_keys"][bob.user_id][bob.device_id]
    assert keys["keys"][f"ed25519:{bob.device_id}"] == ident.public_b64
    devices = await ask("GET", f"/user/devices/{bob.user_id}")
    assert devices["user_id"] == bob.user_id
    assert [d["device_id"] for d in devices["devices"]] == [bob.device_id]
    assert devices["devices"][0]["keys"]["keys"][f"ed25519:{bob.device_id}"] == ident.public_b64

    # Claimed concurrently, each one-time key goes out once; then there are none.
    answers = await asyncio.gather(*[ask("POST", "/user/keys/claim", claim) for _ in range(4)])
    claimed = [a["one_time_keys"].get(bob.user_id, {}).get(bob.device_id) for a in answers]
    got = [key for c in claimed if c for key in c]
    assert len(got) == len(set(got)) == 3 and claimed.count(None) == 1

    with pytest.raises(RemoteError) as foreign:
        await ask("POST", "/user/keys/query", {"device_keys": {alice.user_id: []}})
    assert (foreign.value.remote_status, foreign.value.errcode) == (400, "M_INVALID_PARAM")


async def test_our_clients_query_and_claim_keys_of_remote_users(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    ident = await upload_device(hs2, bob, otks=1)
    await hs2.hs.services.keys.grant_lookup(alice.user_id, bob.user_id)
    query = await hs1.api("POST", "keys/query", alice,
                          json={"device_keys": {bob.user_id: [], "@x:hs3.localhost": []}})
    assert query.status_code == 200, query.text
    body = query.json()
    assert body["device_keys"][bob.user_id][bob.device_id]["keys"][f"ed25519:{bob.device_id}"] == ident.public_b64
    assert "hs3.localhost" in body["failures"]  # no such server: reported, not fatal
    claim = await hs1.api("POST", "keys/claim", alice,
                          json={"one_time_keys": {bob.user_id: {bob.device_id: PARLEY_OTK}}})
    assert claim.status_code == 200, claim.text
    [(key_id, key)] = claim.json()["one_time_keys"][bob.user_id][bob.device_id].items()
    assert key_id.startswith(PARLEY_OTK + ":") and key["usage"] == "one_time_prekey"


async def test_remote_device_lists_are_cached_until_an_update(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as servers:
        hs1, hs2 = servers.running[H1], servers.running[H2]
        alice, bob = await hs1.register("alice"), await hs2.register("bob")
        room_id = await create_room(hs1, alice, room_version="11")
        assert (await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})).status_code == 200
        await Syncer(hs1, alice).check_until(lambda: _joined_is(hs1, alice, room_id, {alice.user_id, bob.user_id}))
        first = await upload_device(hs2, bob)
        await delivered(hs2, H1)  # the device-list update of bob's upload has reached hs1

        async def devices() -> dict[str, Any]:
            response = await hs1.api("POST", "keys/query", alice, json={"device_keys": {bob.user_id: []}})
            assert response.status_code == 200, response.text
            body: dict[str, Any] = response.json()
            assert body["failures"] == {}, body
            return dict(body["device_keys"].get(bob.user_id, {}))

        assert set(await devices()) == {bob.device_id}
        # hs2 is gone: the second query is answered from what hs1 keeps, not over federation.
        await servers.stop(H2)
        kept = await devices()
        assert kept[bob.device_id]["keys"][f"ed25519:{bob.device_id}"] == first.public_b64
        hs2 = await servers.start(H2)
        # A new device of bob's: hs2's device-list update makes hs1 ask again.
        second = await login(hs2, bob, "SECOND")
        ident = await upload_device(hs2, second)
        await delivered(hs2, H1)
        fresh = await devices()
        assert set(fresh) == {bob.device_id, "SECOND"}
        assert fresh["SECOND"]["keys"]["ed25519:SECOND"] == ident.public_b64


async def delivered(server: RunningServer, destination: str) -> None:
    """Until ``server`` has nothing queued for ``destination`` (each accepted transaction wakes the check;
    the destination answers a transaction once it has applied it)."""
    sender = server.hs.federation.sender
    woken = asyncio.Event()

    def listener(to: str) -> None:
        if to == destination:
            woken.set()

    sender.delivered_listeners.append(listener)
    try:
        while True:
            woken.clear()
            with server.hs.database.activated():
                left = await sender.outbox.batch(server.hs.config.server_name, destination, 1, 1)
            if not left:
                return
            await woken.wait()
    finally:
        sender.delivered_listeners.remove(listener)


async def _joined_is(server: RunningServer, account: Account, room_id: str, users: set[str]) -> bool:
    return await joined(server, account, room_id) == users

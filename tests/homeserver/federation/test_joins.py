"""Joining rooms across servers over real TLS: make_join/send_join, the state and auth chain checked
and stored, the room in the joiner's /sync; refusals with clear Matrix errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.federation import Cluster
from tests.support.server import Account, RunningServer

H1, H2 = "hs1.localhost", "hs2.localhost"


async def create_room(server: RunningServer, owner: Account, **body: Any) -> str:
    response = await server.api("POST", "createRoom", owner, json={"preset": "public_chat", **body})
    assert response.status_code == 200, response.text
    return str(response.json()["room_id"])


async def joined_members(server: RunningServer, account: Account, room_id: str) -> set[str]:
    response = await server.api("GET", f"rooms/{room_id}/joined_members", account)
    assert response.status_code == 200, response.text
    return set(response.json()["joined"])


@pytest.mark.parametrize("version", ["1", "10", "11", "12"])
async def test_a_remote_user_joins_a_room_created_on_another_server(pair: Cluster, version: str) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, name="Across", room_version=version)
    joined = await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})
    assert joined.status_code == 200, joined.text
    assert joined.json() == {"room_id": room_id}
    # hs1 has bob in the room; hs2 has the room with its state.
    assert await joined_members(hs1, alice, room_id) == {alice.user_id, bob.user_id}
    assert await joined_members(hs2, bob, room_id) == {alice.user_id, bob.user_id}
    sync = (await hs2.api("GET", "sync", bob)).json()
    room = sync["rooms"]["join"][room_id]
    events = room["state"]["events"] + room["timeline"]["events"]
    names = [e["content"].get("name") for e in events if e["type"] == "m.room.name"]
    assert names == ["Across"]
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob.user_id for e in room["timeline"]["events"])
    name = await hs2.api("GET", f"rooms/{room_id}/state/m.room.name", bob)
    assert name.json() == {"name": "Across"}


async def test_joins_the_room_refuses_are_refused(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    private = await create_room(hs1, alice, preset="private_chat")
    refused = await hs2.api("POST", f"join/{private}", bob, params={"server_name": H1}, json={})
    assert refused.status_code == 403, refused.text
    assert refused.json()["errcode"] == "M_FORBIDDEN"
    unknown = await hs2.api("POST", f"join/!nowhere:{H1}", bob, json={})
    assert unknown.status_code == 404 and unknown.json()["errcode"] == "M_NOT_FOUND"
    with hs2.hs.database.activated():
        assert await hs2.hs.services.rooms.events.room_head(private) is None

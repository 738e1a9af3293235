"""Joining rooms across servers over real TLS: make_join/send_join, the state and auth chain checked
and stored, the room in the joiner's /sync; refusals with clear Matrix errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.federation import Cluster
from tests.support.server import Account, ClientCalls

H1, H2 = "hs1.localhost", "hs2.localhost"


async def create_room(server: ClientCalls, owner: Account, **body: Any) -> str:
    response = await server.api("POST", "createRoom", owner, json={"preset": "public_chat", **body})
    assert response.status_code == 200, response.text
    return str(response.json()["room_id"])


async def joined_members(server: ClientCalls, account: Account, room_id: str) -> set[str]:
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


async def sync_rooms(server: ClientCalls, account: Account) -> dict[str, Any]:
    response = await server.api("GET", "sync", account)
    assert response.status_code == 200, response.text
    return dict(response.json()["rooms"])


async def test_a_remote_invite_is_shown_joined_and_declined(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob, carol = await hs1.register("alice"), await hs2.register("bob"), await hs2.register("carol")
    room_id = await create_room(hs1, alice, preset="private_chat", name="Invite only")
    for guest in (bob, carol):
        invited = await hs1.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": guest.user_id})
        assert invited.status_code == 200, invited.text
    # hs2 shows the invite with the state the inviter sent.
    invite = (await sync_rooms(hs2, bob))["invite"][room_id]["invite_state"]["events"]
    assert {"type": "m.room.name", "state_key": "", "sender": alice.user_id,
            "content": {"name": "Invite only"}} in invite
    mine = [e for e in invite if e["type"] == "m.room.member" and e["state_key"] == bob.user_id]
    assert mine and mine[0]["content"]["membership"] == "invite" and mine[0]["sender"] == alice.user_id
    # The invite on hs1 carries hs2's signature too.
    with hs1.hs.database.activated():
        stored = await hs1.hs.services.rooms.events.state_event(room_id, "m.room.member", bob.user_id)
    assert stored is not None and set(stored.pdu["signatures"]) == {H1, H2}
    # Carol declines (hs2 is not in the room: make_leave/send_leave on hs1), bob accepts (through the
    # inviter's server).
    declined = await hs2.api("POST", f"rooms/{room_id}/leave", carol, json={})
    assert declined.status_code == 200, declined.text
    joined = await hs2.api("POST", f"rooms/{room_id}/join", bob, json={})
    assert joined.status_code == 200, joined.text
    assert await joined_members(hs1, alice, room_id) == {alice.user_id, bob.user_id}
    with hs1.hs.database.activated():
        left = await hs1.hs.services.rooms.repo.membership(room_id, carol.user_id)
    assert left is not None and left.membership == "leave"
    assert room_id not in (await sync_rooms(hs2, carol))["invite"]
    with hs2.hs.database.activated():
        declined_here = await hs2.hs.services.rooms.repo.membership(room_id, carol.user_id)
    assert declined_here is not None and declined_here.membership == "leave"
    assert room_id in (await sync_rooms(hs2, bob))["join"]


async def test_an_invite_for_an_unknown_user_is_refused(pair: Cluster) -> None:
    hs1 = pair.running[H1]
    alice = await hs1.register("alice")
    room_id = await create_room(hs1, alice, preset="private_chat")
    refused = await hs1.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": f"@nobody:{H2}"})
    assert refused.status_code == 404, refused.text
    assert refused.json()["errcode"] == "M_NOT_FOUND"
    with hs1.hs.database.activated():
        member = await hs1.hs.services.rooms.repo.membership(room_id, f"@nobody:{H2}")
    assert member is not None and member.membership == "leave"  # the refused invite was revoked

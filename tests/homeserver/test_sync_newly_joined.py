"""Newly joined rooms in incremental /sync: the other members' presence arrives, for the
joiner and for those already there; a rejoining user learns of joins made while away."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.homeserver.room_helpers import create_room, send_text, sync, timeline
from tests.support.server import RunningServer


def presence_senders(body: dict[str, Any]) -> list[str]:
    return [e["sender"] for e in body["presence"]["events"] if e["type"] == "m.presence"]


async def test_joiner_gets_the_members_presence_and_they_get_the_joiners(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    alice_first = await sync(server, alice)  # both have synced once: both are online
    bob_first = await sync(server, bob)
    assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 200
    bob_next = await sync(server, bob, since=bob_first["next_batch"])
    assert room in bob_next["rooms"]["join"]
    assert presence_senders(bob_next).count(alice.user_id) == 1
    assert alice.user_id not in presence_senders(await sync(server, bob, since=bob_next["next_batch"]))
    alice_next = await sync(server, alice, since=alice_first["next_batch"])
    assert presence_senders(alice_next).count(bob.user_id) == 1


async def test_a_member_who_never_had_a_presence_arrives_offline(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    await sync(server, alice, set_presence="offline")  # Alice never comes online
    bob_first = await sync(server, bob, set_presence="offline")
    assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 200
    bob_next = await sync(server, bob, since=bob_first["next_batch"], set_presence="offline")
    [event] = [e for e in bob_next["presence"]["events"] if e["sender"] == alice.user_id]
    assert event["content"]["presence"] == "offline"


async def test_a_rejoining_user_learns_of_joins_made_while_away(server: RunningServer) -> None:
    """``joined`` history: after rejoining, nothing from the time away is in the timeline
    (spec, "History visibility"), but the room's state — including who joined meanwhile —
    is in ``state``, the state up to the timeline's start.  SyTest's "Current state appears
    in timeline in private history with many messages after" wants that join in the
    timeline itself, which would show an event the user was not allowed to see."""
    creator, syncer, invitee = [await server.register() for _ in range(3)]
    room = await create_room(server, creator, preset="public_chat")
    assert (await server.api("POST", f"join/{quote(room)}", syncer, json={})).status_code == 200
    hv = await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", creator,
                          json={"history_visibility": "joined"})
    assert hv.status_code == 200, hv.text
    await server.api("POST", f"rooms/{quote(room)}/invite", creator, json={"user_id": invitee.user_id})
    since = (await sync(server, syncer))["next_batch"]
    assert (await server.api("POST", f"rooms/{quote(room)}/leave", syncer, json={})).status_code == 200
    assert (await server.api("POST", f"rooms/{quote(room)}/join", invitee, json={})).status_code == 200
    for i in range(15):
        await send_text(server, creator, room, f"while away {i}")
    assert (await server.api("POST", f"join/{quote(room)}", syncer, json={})).status_code == 200
    body = await sync(server, syncer, since=since)
    section = body["rooms"]["join"][room]
    assert not [e for e in timeline(body, room) if e["type"] == "m.room.message"]
    members = {e["state_key"]: e["content"]["membership"] for e in section["state"]["events"]
               if e["type"] == "m.room.member"}
    assert members[invitee.user_id] == "join" and members[creator.user_id] == "join"
    assert any(e["type"] == "m.room.member" and e["state_key"] == syncer.user_id
               and e["content"]["membership"] == "join" for e in section["timeline"]["events"])
    page = await server.api("GET", f"rooms/{quote(room)}/messages", syncer, params={"dir": "b", "limit": 50})
    assert page.status_code == 200, page.text
    assert not [e for e in page.json()["chunk"] if e["type"] == "m.room.message"]

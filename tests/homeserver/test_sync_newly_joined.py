"""Newly joined rooms in incremental /sync: the other members' presence arrives, for the
joiner and for those already there; a rejoining user learns of joins made while away."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.homeserver.room_helpers import create_room, sync
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

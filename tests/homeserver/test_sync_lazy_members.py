"""Lazy-loaded members in incremental /sync (spec: "Lazy-loading room members").

A gapped sync carries the membership changes in the gap plus the members of the
timeline's senders the device does not hold yet; membership events a device was
already sent are not repeated unless ``include_redundant_members`` asks; a retried
request (its response lost) is answered from the same starting point.
"""

from __future__ import annotations

import json
from typing import Any

from homeserver.services.sync_lazy import KnowledgeBuilder, LazyMembersSent
from tests.homeserver.room_helpers import create_room, send_text, sync
from tests.support.server import Account, RunningServer

LAZY = json.dumps({"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 10}}})
REDUNDANT = json.dumps({"room": {"state": {"lazy_load_members": True, "include_redundant_members": True},
                                 "timeline": {"limit": 10}}})


def members(body: dict[str, Any], room: str) -> dict[str, str]:
    """state_key -> membership of the m.room.member events in the room's state section."""
    section = body["rooms"]["join"].get(room, {})
    return {e["state_key"]: e["content"]["membership"] for e in section.get("state", {}).get("events", [])
            if e["type"] == "m.room.member"}


async def _room_with(server: RunningServer, alice: Account, *joiners: Account) -> str:
    room = await create_room(server, alice, preset="public_chat", name="Lazy")
    for user in joiners:
        response = await server.api("POST", f"join/{room}", user, json={})
        assert response.status_code == 200, response.text
    return room


async def _login(server: RunningServer, account: Account) -> Account:
    response = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": account.user_id},
        "password": account.password})
    assert response.status_code == 200, response.text
    data = response.json()
    return Account(data["user_id"], data["device_id"], data["access_token"], account.password)


async def _fill(server: RunningServer, who: Account, room: str, count: int) -> None:
    for i in range(count):
        await send_text(server, who, room, f"filler {i}")


async def test_gap_members_and_speakers_are_sent_once(server: RunningServer) -> None:
    alice, bob, charlie, dave = [await server.register() for _ in range(4)]
    room = await _room_with(server, alice, bob, charlie)
    await _fill(server, bob, room, 10)
    first = await sync(server, alice, filter=LAZY)
    assert members(first, room) == {alice.user_id: "join", bob.user_id: "join"}

    # Dave joins in the gap (and says nothing); Charlie fills the timeline.
    await server.api("POST", f"join/{room}", dave, json={})
    await _fill(server, charlie, room, 20)
    second = await sync(server, alice, since=first["next_batch"], filter=LAZY)
    assert second["rooms"]["join"][room]["timeline"]["limited"] is True
    assert members(second, room) == {charlie.user_id: "join", dave.user_id: "join"}

    # Dave leaves in the next gap: only his leave; Charlie's unchanged membership is held already.
    await server.api("POST", f"rooms/{room}/leave", dave, json={})
    await _fill(server, charlie, room, 20)
    third = await sync(server, alice, since=second["next_batch"], filter=LAZY)
    assert members(third, room) == {dave.user_id: "leave"}

    # An old member who starts speaking after a gap brings their membership.
    await _fill(server, bob, room, 10)
    fourth = await sync(server, alice, since=third["next_batch"], filter=LAZY)
    assert members(fourth, room) == {}, "Bob's membership was sent in the first sync"


async def test_redundant_members_only_when_asked(server: RunningServer) -> None:
    alice, bob, charlie = [await server.register() for _ in range(3)]
    room = await _room_with(server, alice, bob, charlie)
    await _fill(server, bob, room, 5)
    await _fill(server, charlie, room, 5)
    for flt, again in ((LAZY, {}), (REDUNDANT, {bob.user_id: "join", charlie.user_id: "join"})):
        first = await sync(server, alice, filter=flt)
        assert members(first, room) == {alice.user_id: "join", bob.user_id: "join", charlie.user_id: "join"}
        await send_text(server, bob, room, "from bob")
        await send_text(server, charlie, room, "from charlie")
        second = await sync(server, alice, since=first["next_batch"], filter=flt)
        assert members(second, room) == again


async def test_a_retried_sync_is_sent_the_members_again(server: RunningServer) -> None:
    alice, bob, charlie = [await server.register() for _ in range(3)]
    room = await _room_with(server, alice, bob, charlie)
    await _fill(server, bob, room, 10)
    first = await sync(server, alice, filter=LAZY)
    assert set(members(first, room)) == {alice.user_id, bob.user_id}
    await send_text(server, charlie, room, "charlie speaks")
    lost = await sync(server, alice, since=first["next_batch"], filter=LAZY)
    assert members(lost, room) == {charlie.user_id: "join"}
    # The client never saw ``lost`` and asks again from ``first``: Charlie's member event again.
    retried = await sync(server, alice, since=first["next_batch"], filter=LAZY)
    assert members(retried, room) == {charlie.user_id: "join"}
    # From ``lost``'s token Charlie is held; another device of Alice's holds nothing.
    await send_text(server, charlie, room, "again")
    after = await sync(server, alice, since=lost["next_batch"], filter=LAZY)
    assert members(after, room) == {}
    other_device = await _login(server, alice)
    elsewhere = await sync(server, other_device, since=lost["next_batch"], filter=LAZY)
    assert members(elsewhere, room) == {charlie.user_id: "join"}


def test_memory_is_bounded_and_unknown_tokens_start_empty() -> None:
    memory = LazyMembersSent(max_devices=2, tokens_per_device=2)
    assert memory.known("@a:hs", "D", None) == {}
    assert memory.known("@a:hs", "D", "p1") is None
    builder = KnowledgeBuilder({})
    builder.sent("!r:hs", [("@b:hs", "$1")])
    memory.remember("@a:hs", "D", "p1", builder.result())
    assert memory.known("@a:hs", "D", "p1") == {"!r:hs": {"@b:hs": "$1"}}
    # Two responses ending at one token: only what both sent counts as held.
    other = KnowledgeBuilder({})
    other.sent("!r:hs", [("@b:hs", "$2")])
    memory.remember("@a:hs", "D", "p1", other.result())
    assert memory.known("@a:hs", "D", "p1") == {}
    for token in ("p2", "p3"):
        memory.remember("@a:hs", "D", token, {})
    assert memory.known("@a:hs", "D", "p1") is None  # two tokens per device
    memory.remember("@b:hs", "D", "p1", {})
    memory.remember("@c:hs", "D", "p1", {})
    assert memory.known("@a:hs", "D", "p3") is None  # two devices
    # A reset room is not held any more, and earlier knowledge is never changed in place.
    before = {"!r:hs": {"@b:hs": "$1"}}
    later = KnowledgeBuilder(before)
    assert later.holds("!r:hs", "@b:hs", "$1")
    later.reset_room("!r:hs")
    later.sent("!r:hs", [("@c:hs", "$3")])
    assert not later.holds("!r:hs", "@b:hs", "$1")
    assert later.result() == {"!r:hs": {"@c:hs": "$3"}} and before == {"!r:hs": {"@b:hs": "$1"}}

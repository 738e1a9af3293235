"""/sync over real HTTP: initial and incremental, limited timelines, lazy members, filters,
full_state, invites and leaves, long-poll wake-up and timeout."""

from __future__ import annotations

import asyncio
import json
import time

from homeserver.services.sync_api import SyncToken
from tests.homeserver.room_helpers import bodies, create_room, expect_error, send_text, sync, timeline
from tests.support.server import RunningServer


async def test_initial_and_incremental_sync(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, name="Sync room", invite=[bob.user_id])
    await server.api("POST", f"rooms/{room}/join", bob, json={})
    await send_text(server, alice, room, "one")
    first = await sync(server, bob)
    joined = first["rooms"]["join"][room]
    assert bodies(joined["timeline"]["events"]) == ["one"]
    assert joined["timeline"]["limited"] is False
    assert set(joined) >= {"timeline", "state", "ephemeral", "account_data"}
    assert joined["summary"]["m.joined_member_count"] == 2
    # The shape of an empty part is the Matrix one.
    for key in ("presence", "account_data", "to_device"):
        assert isinstance(first[key]["events"], list)
    await send_text(server, alice, room, "two")
    await send_text(server, bob, room, "three")
    second = await sync(server, bob, since=first["next_batch"])
    assert bodies(timeline(second, room)) == ["two", "three"]
    assert second["rooms"]["join"][room]["state"]["events"] == []
    # Nothing new: the room is absent and next_batch does not go backwards.
    third = await sync(server, bob, since=second["next_batch"])
    assert room not in third["rooms"]["join"]
    assert SyncToken.decode(third["next_batch"]).get("events") >= SyncToken.decode(second["next_batch"]).get("events")
    await expect_error(await server.api("GET", "sync", bob, params={"since": "garbage"}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("GET", "sync", bob, params={"timeout": "-1"}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("GET", "sync", bob, params={"set_presence": "busy"}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("GET", "sync", bob, params={"filter": "nosuchfilter"}), 404, "M_NOT_FOUND")
    await expect_error(await server.api("GET", "sync", bob, params={"filter": "{bad"}), 400, "M_NOT_JSON")


async def test_limited_incremental_sync_has_state_and_prev_batch(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice, name="Before")
    flt = json.dumps({"room": {"timeline": {"limit": 3}}})
    first = await sync(server, alice, filter=flt)
    await server.api("PUT", f"rooms/{room}/state/m.room.name", alice, json={"name": "After"})
    sent = [await send_text(server, alice, room, f"n{i}") for i in range(6)]
    second = await sync(server, alice, since=first["next_batch"], filter=flt)
    joined = second["rooms"]["join"][room]
    assert joined["timeline"]["limited"] is True
    assert [e["event_id"] for e in joined["timeline"]["events"]] == sent[-3:]
    # The state section brings the name change that fell out of the timeline.
    names = [e for e in joined["state"]["events"] if e["type"] == "m.room.name"]
    assert names and names[0]["content"] == {"name": "After"}
    assert names[0]["unsigned"]["prev_content"] == {"name": "Before"}
    page = (await server.api("GET", f"rooms/{room}/messages", alice,
                             params={"from": joined["timeline"]["prev_batch"], "dir": "b", "limit": 3})).json()
    assert [e["event_id"] for e in page["chunk"]] == list(reversed(sent[:3]))


async def test_a_limited_timeline_s_state_is_the_state_just_before_its_first_event(server: RunningServer) -> None:
    """The gap's state ends right before the timeline: a state event just before it is in,
    the timeline's own state event is not, and the value it replaced (from the gap) is."""
    alice = await server.register()
    room = await create_room(server, alice, name="Old")
    flt = json.dumps({"room": {"timeline": {"limit": 2}}})
    first = await sync(server, alice, filter=flt)
    await send_text(server, alice, room, "in the gap")
    await server.api("PUT", f"rooms/{room}/state/m.room.name", alice, json={"name": "Gap"})
    await server.api("PUT", f"rooms/{room}/state/m.room.topic", alice, json={"topic": "just before"})
    renamed = await server.api("PUT", f"rooms/{room}/state/m.room.name", alice, json={"name": "Timeline"})
    last = await send_text(server, alice, room, "last")
    joined = (await sync(server, alice, since=first["next_batch"], filter=flt))["rooms"]["join"][room]
    assert joined["timeline"]["limited"] is True
    assert [e["event_id"] for e in joined["timeline"]["events"]] == [renamed.json()["event_id"], last]
    state = {(e["type"], e["state_key"]): e["content"] for e in joined["state"]["events"]}
    assert state == {("m.room.name", ""): {"name": "Gap"}, ("m.room.topic", ""): {"topic": "just before"}}


async def test_lazy_loading_members_and_filters(server: RunningServer) -> None:
    alice = await server.register()
    users = [await server.register() for _ in range(3)]
    room = await create_room(server, alice, invite=[u.user_id for u in users])
    for user in users:
        await server.api("POST", f"rooms/{room}/join", user, json={})
    for _ in range(4):
        await send_text(server, alice, room, "filler")
    await send_text(server, users[0], room, "from u0")
    lazy = json.dumps({"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 2}}})
    body = await sync(server, alice, filter=lazy)
    state = body["rooms"]["join"][room]["state"]["events"]
    members = {e["state_key"] for e in state if e["type"] == "m.room.member"}
    assert members == {alice.user_id, users[0].user_id}
    assert any(e["type"] == "m.room.create" for e in state)
    assert body["rooms"]["join"][room]["summary"]["m.joined_member_count"] == 4
    # A new sender's member event arrives with their message.
    await send_text(server, users[2], room, "from u2")
    later = await sync(server, alice, since=body["next_batch"], filter=lazy)
    later_state = later["rooms"]["join"][room]["state"]["events"]
    assert [e["state_key"] for e in later_state if e["type"] == "m.room.member"] == [users[2].user_id]
    # Without lazy loading, every member is there.
    full = await sync(server, alice)
    full_members = {e["state_key"] for e in full["rooms"]["join"][room]["state"]["events"]
                    + full["rooms"]["join"][room]["timeline"]["events"] if e["type"] == "m.room.member"}
    assert full_members == {alice.user_id, *(u.user_id for u in users)}
    # Type and room filters on the timeline.
    only_members = json.dumps({"room": {"timeline": {"types": ["m.room.mem*"], "limit": 50}}})
    typed = await sync(server, alice, filter=only_members)
    assert {e["type"] for e in timeline(typed, room)} == {"m.room.member"}
    other = await create_room(server, alice)
    scoped = await sync(server, alice, filter=json.dumps({"room": {"rooms": [other]}}))
    assert set(scoped["rooms"]["join"]) == {other}
    not_scoped = await sync(server, alice, filter=json.dumps({"room": {"not_rooms": [other]}}))
    assert other not in not_scoped["rooms"]["join"] and room in not_scoped["rooms"]["join"]
    # A stored filter is used by id.
    created = await server.api("POST", f"user/{alice.user_id}/filter", alice,
                               json={"room": {"timeline": {"limit": 1}}})
    assert created.status_code == 200, created.text
    by_id = await sync(server, alice, filter=created.json()["filter_id"])
    assert len(timeline(by_id, room)) == 1 and by_id["rooms"]["join"][room]["timeline"]["limited"] is True


async def test_full_state_and_newly_joined(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, name="Late")
    await send_text(server, alice, room, "before bob")
    first = await sync(server, bob)
    await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": bob.user_id})
    invited = await sync(server, bob, since=first["next_batch"])
    assert room in invited["rooms"]["invite"]
    await server.api("POST", f"rooms/{room}/join", bob, json={})
    joined = await sync(server, bob, since=invited["next_batch"])
    section = joined["rooms"]["join"][room]
    # A newly joined room comes with its full state and history.
    everything = section["state"]["events"] + section["timeline"]["events"]
    assert any(e["type"] == "m.room.name" for e in everything)
    assert any(e["type"] == "m.room.create" for e in everything)
    assert "before bob" in bodies(section["timeline"]["events"])
    full = await sync(server, bob, since=joined["next_batch"], full_state="true")
    state = full["rooms"]["join"][room]["state"]["events"] + full["rooms"]["join"][room]["timeline"]["events"]
    assert any(e["type"] == "m.room.power_levels" for e in state)


async def test_leave_sections(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, invite=[bob.user_id])
    await server.api("POST", f"rooms/{room}/join", bob, json={})
    first = await sync(server, bob)
    await send_text(server, alice, room, "last words")
    await server.api("POST", f"rooms/{room}/leave", bob, json={})
    await send_text(server, alice, room, "after bob left")
    after = await sync(server, bob, since=first["next_batch"])
    left = after["rooms"]["leave"][room]["timeline"]["events"]
    assert bodies(left) == ["last words"]
    assert left[-1]["type"] == "m.room.member" and left[-1]["content"]["membership"] == "leave"
    assert room not in after["rooms"]["join"]
    # Initial sync: left rooms only with include_leave.
    assert room not in (await sync(server, bob))["rooms"]["leave"]
    with_leave = await sync(server, bob, filter=json.dumps({"room": {"include_leave": True}}))
    assert room in with_leave["rooms"]["leave"]
    assert "after bob left" not in bodies(with_leave["rooms"]["leave"][room]["timeline"]["events"])


async def _wait_for_waiter(server: RunningServer, user_id: str) -> None:
    notifier = server.hs.services.notifier
    for _ in range(500):
        if user_id in notifier._waiters:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the long-poll never started waiting")


async def test_long_poll_wakes_up_right_after_the_write(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, invite=[bob.user_id])
    await server.api("POST", f"rooms/{room}/join", bob, json={})
    first = await sync(server, bob)
    settle = await sync(server, bob, since=first["next_batch"], timeout=200)
    since = settle["next_batch"]
    delays = []
    for round_ in range(3):
        poll = asyncio.create_task(sync(server, bob, since=since, timeout=20000))
        await _wait_for_waiter(server, bob.user_id)
        await send_text(server, alice, room, f"wake {round_}")
        written = time.monotonic()
        body = await poll
        delays.append(time.monotonic() - written)
        assert bodies(timeline(body, room)) == [f"wake {round_}"]
        since = body["next_batch"]
    print(f"long-poll wake-up delays after the write: {[round(d * 1000, 1) for d in delays]} ms")


async def test_long_poll_timeout_returns_empty(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    first = await sync(server, alice)
    settle = await sync(server, alice, since=first["next_batch"], timeout=200)
    started = time.monotonic()
    empty = await sync(server, alice, since=settle["next_batch"], timeout=400)
    waited = time.monotonic() - started
    print(f"timeout path answered after {waited * 1000:.0f} ms")
    assert empty["rooms"]["join"] == {} and empty["rooms"]["invite"] == {} and empty["rooms"]["leave"] == {}
    assert empty["to_device"]["events"] == []
    before = SyncToken.decode(settle["next_batch"])
    after = SyncToken.decode(empty["next_batch"])
    assert all(a >= b for a, b in zip(after.positions, before.positions, strict=True))
    # The empty answer's token is a valid place to continue from: nothing is skipped.
    sent = await send_text(server, alice, room, "after the timeout")
    next_body = await sync(server, alice, since=empty["next_batch"])
    assert [e["event_id"] for e in timeline(next_body, room)] == [sent]

"""Commit on success: a batch is staged on copies and becomes visible whole, or not at all."""

from __future__ import annotations

import dataclasses

import pytest

from client_tk.core.events import ClientEvent, RoomUpdated
from client_tk.core.processor import Staged
from client_tk.core.sync import parse_sync
from tests.client.conftest import MakeClient

ROOM = "!staged:example.org"


def _batch(user_id: str, since: str) -> dict[str, object]:
    member = {"type": "m.room.member", "state_key": user_id, "sender": user_id,
              "event_id": "$m1", "content": {"membership": "join"}}
    name = {"type": "m.room.name", "state_key": "", "sender": user_id, "event_id": "$n1",
            "content": {"name": "Staged"}}
    tag = {"type": "m.tag", "content": {"tags": {"m.favourite": {}}}}
    return {"next_batch": since,
            "rooms": {"join": {ROOM: {"state": {"events": [member, name]}, "timeline": {"events": []},
                                      "account_data": {"events": [tag]},
                                      "unread_notifications": {"notification_count": 2}}}}}


async def test_process_stages_on_copies_and_publishes_after_commit(new_user: MakeClient) -> None:
    alice = await new_user("alice", start=False)
    await alice.sync_once(0)
    seen: list[ClientEvent] = []
    alice.bus.subscribe(seen.append)
    before = alice.rooms
    batch = parse_sync(_batch(alice.user_id, "s_next"))

    staged = alice.processor.process(batch, alice._rooms, {})  # pure: nothing visible yet
    assert ROOM in staged.rooms and ROOM not in alice.rooms and alice.rooms is before
    assert any(isinstance(e, RoomUpdated) and e.room_id == ROOM for e in staged.events)
    assert seen == []
    alice.store.rollback()

    async with alice.lock:
        await alice._commit(lambda: alice.processor.process(batch, alice._rooms, {}))
    room = alice.rooms[ROOM]
    assert (room.name, room.unread, room.favourite, room.joined) == ("Staged", 2, True, [alice.user_id])
    assert ROOM not in before  # the old snapshot is unchanged: readers keep what they had
    assert any(isinstance(e, RoomUpdated) and e.room_id == ROOM for e in seen)
    with pytest.raises(TypeError):
        alice.rooms[ROOM] = room  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        room.name = "changed"  # type: ignore[misc]
    with pytest.raises(TypeError):
        room.members["@x:y"] = "join"  # type: ignore[index]


async def test_a_failing_batch_changes_nothing(new_user: MakeClient) -> None:
    alice = await new_user("alice", start=False)
    await alice.sync_once(0)
    since, before = alice.since, alice.rooms
    seen: list[ClientEvent] = []
    alice.bus.subscribe(seen.append)
    batch = parse_sync(_batch(alice.user_id, "s_never"))

    def stage_then_fail() -> Staged:
        alice.processor.process(batch, alice._rooms, {})
        raise RuntimeError("disk full")

    async with alice.lock:
        with pytest.raises(RuntimeError):
            await alice._commit(stage_then_fail, {"since": "s_never"})
    assert alice.rooms is before and ROOM not in alice.rooms and seen == []
    assert alice.since == since and alice.store.get("rooms", ROOM) is None and not alice.store.dirty

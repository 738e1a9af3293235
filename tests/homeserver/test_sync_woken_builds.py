"""A woken long-poll builds only the streams that moved, once per wake-up.

Counted through real servers (``SyncService.built``): the first build of a
``/sync`` with ``since`` finds nothing and waits; the wake-up's rebuild reads
the stream positions again and builds only the parts of streams that moved
past the first build's positions.  A wake-up that moved nothing builds
nothing.  Across instances (database wake-up queue) the same holds.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from homeserver.services.sync_api import STREAMS
from tests.support.server import Account, RunningServer, serve_homeserver

STREAM_PARTS = ("rooms", "to_device", "TypingContributor", "ReceiptContributor", "AccountDataContributor",
                "PresenceContributor")


async def _until(condition: Any, what: str) -> None:
    for _ in range(2000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _pair(server: RunningServer) -> tuple[Account, Account, str]:
    alice, bob = await server.register(), await server.register()
    room = (await server.api("POST", "createRoom", alice, json={"invite": [bob.user_id]})).json()["room_id"]
    assert (await server.api("POST", f"join/{room}", bob, json={})).status_code == 200
    return alice, bob, room


async def _waiting(server: RunningServer, account: Account, room: str) -> tuple[asyncio.Task[Any], Counter[str]]:
    """Start ``account``'s long-poll; return it and the build counts once it waits in ``room``."""
    since = (await server.api("GET", "sync", account, params={"timeout": 0})).json()["next_batch"]
    notifier = server.hs.services.notifier
    poll = asyncio.create_task(server.api("GET", "sync", account, params={"since": since, "timeout": 30000},
                                          timeout=60))
    await _until(lambda: notifier.users_waiting_in(room) == {account.user_id} and notifier.pending_waiters == 0,
                 "the long-poll waits, watching its room")
    return poll, Counter(server.hs.services.sync.built)


def _since(server: RunningServer, before: Counter[str]) -> dict[str, int]:
    after = server.hs.services.sync.built
    return {part: after[part] - before[part] for part in ("build", "unmoved", *STREAM_PARTS)}


def _only(built: dict[str, int], *parts: str) -> None:
    assert built["build"] == 1, built
    for part in STREAM_PARTS:
        assert built[part] == (1 if part in parts else 0), (part, built)


@pytest.mark.parametrize("where", ["same instance", "other instance"])
async def test_a_message_rebuilds_the_rooms_only(make_config: Any, where: str) -> None:
    config = make_config()
    async with serve_homeserver(config) as one, serve_homeserver(config.replace()) as two:
        alice, bob, room = await _pair(one)
        poll, before = await _waiting(one, bob, room)
        sender = one if where == "same instance" else two
        sent = await sender.api("PUT", f"rooms/{room}/send/m.room.message/t1", alice,
                                json={"msgtype": "m.text", "body": "hello"})
        assert sent.status_code == 200, sent.text
        body = (await poll).json()
        events = body["rooms"]["join"][room]["timeline"]["events"]
        assert [e["event_id"] for e in events] == [sent.json()["event_id"]]
        # The answer still carries what clients rely on in every response.
        assert "device_one_time_keys_count" in body and "unread_notifications" in body["rooms"]["join"][room]
        # One build for the wake-up: the rooms and the parts that read room events
        # (presence: people who joined); to-device, typing, receipts, account data untouched.
        _only(_since(one, before), "rooms", "PresenceContributor")


async def test_a_to_device_message_rebuilds_to_device_only(make_config: Any) -> None:
    async with serve_homeserver(make_config()) as server:
        alice, bob, room = await _pair(server)
        poll, before = await _waiting(server, bob, room)
        sent = await server.api("PUT", "sendToDevice/m.test/t1", alice,
                                json={"messages": {bob.user_id: {bob.device_id: {"n": 1}}}})
        assert sent.status_code == 200, sent.text
        body = (await poll).json()
        assert [e["content"] for e in body["to_device"]["events"]] == [{"n": 1}]
        assert body["rooms"]["join"] == {}
        _only(_since(server, before), "to_device")


async def test_typing_rebuilds_typing_only(make_config: Any) -> None:
    async with serve_homeserver(make_config()) as server:
        alice, bob, room = await _pair(server)
        poll, before = await _waiting(server, bob, room)
        typed = await server.api("PUT", f"rooms/{room}/typing/{alice.user_id}", alice,
                                 json={"typing": True, "timeout": 20000})
        assert typed.status_code == 200, typed.text
        body = (await poll).json()
        ephemeral = body["rooms"]["join"][room]["ephemeral"]["events"]
        assert ephemeral == [{"type": "m.typing", "content": {"user_ids": [alice.user_id]}}]
        _only(_since(server, before), "TypingContributor")


async def _advance_every_stream(server: RunningServer, by: int) -> None:
    """Skip ``by`` positions of every stream (as a busy deployment's counters have moved on)."""
    streams = server.hs.services.sync.streams
    with streams.db.activated():
        async with streams.db.transaction() as conn:
            for stream in STREAMS:
                await streams.advance(conn, stream, by)


# Past 256 CPython no longer shares one int object per value: positions must be compared by value.
@pytest.mark.parametrize("skip", [0, 300], ids=["small positions", "positions past 256"])
async def test_a_wake_up_that_moved_nothing_builds_nothing(make_config: Any, skip: int) -> None:
    async with serve_homeserver(make_config()) as server:
        if skip:
            await _advance_every_stream(server, skip)
        alice, bob, room = await _pair(server)
        poll, before = await _waiting(server, bob, room)
        sync, notifier = server.hs.services.sync, server.hs.services.notifier
        # A wake-up with nothing behind it (as after a lost Redis connection).
        await notifier.notify([bob.user_id])
        await _until(lambda: sync.built["unmoved"] > before["unmoved"]
                     and notifier.users_waiting_in(room) == {bob.user_id} and notifier.pending_waiters == 0,
                     "the woken long-poll found nothing moved and waits again")
        assert not poll.done()
        assert _since(server, before)["build"] == 0
        sent = await server.api("PUT", f"rooms/{room}/send/m.room.message/t1", alice,
                                json={"msgtype": "m.text", "body": "now"})
        body = (await poll).json()
        assert [e["event_id"] for e in body["rooms"]["join"][room]["timeline"]["events"]] == [
            sent.json()["event_id"]]
        built = _since(server, before)
        assert built["unmoved"] == 1
        _only(built, "rooms", "PresenceContributor")

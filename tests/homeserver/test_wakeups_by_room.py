"""Wake-ups scale with the work: a room's event wakes only that room's waiting users.

Across instances without Redis (the database wake-up queue) and with Redis,
and in the notifier itself: the room -> waiting users index, pending
waiters, and messages that stay small whatever the room's size.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

import pytest

from homeserver.notifier import Notifier
from homeserver.wakeups import WakeUp
from tests.support.redis import require_redis
from tests.support.server import RunningServer, serve_homeserver


async def _until(condition: Any, what: str) -> None:
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"never happened: {what}")


async def _room_with(server: RunningServer, owner: Any, member: Any) -> str:
    room = (await server.api("POST", "createRoom", owner, json={"invite": [member.user_id]})).json()["room_id"]
    assert (await server.api("POST", f"join/{room}", member, json={})).status_code == 200
    return room


@pytest.mark.parametrize("bus", ["database-queue", "redis"])
async def test_an_event_wakes_only_its_rooms_users_on_the_other_instance(make_config: Any, bus: str) -> None:
    config = make_config(**({"redis_url": require_redis()} if bus == "redis" else {}))
    async with serve_homeserver(config) as one, serve_homeserver(config.replace()) as two:
        alice, bob, carol, dave = [await one.register(name) for name in ("alice", "bob", "carol", "dave")]
        room_a = await _room_with(one, alice, bob)
        room_b = await _room_with(one, dave, carol)
        since = {u.user_id: (await one.api("GET", "sync", u, params={"timeout": 0})).json()["next_batch"]
                 for u in (bob, carol)}
        notifier = one.hs.services.notifier
        polls = {u.user_id: asyncio.create_task(one.api(
            "GET", "sync", u, params={"since": since[u.user_id], "timeout": 30000}, timeout=60))
            for u in (bob, carol)}
        # Both long-polls wait on instance one, watching their rooms.
        await _until(lambda: notifier.users_waiting_in(room_a) == {bob.user_id}
                     and notifier.users_waiting_in(room_b) == {carol.user_id}
                     and notifier.pending_waiters == 0, "both waiters watch their rooms")
        carol_before = notifier.woken[carol.user_id]

        sent = await two.api("PUT", f"rooms/{room_a}/send/m.room.message/t1", alice,
                             json={"msgtype": "m.text", "body": "only for room A"})
        assert sent.status_code == 200, sent.text
        body = (await polls[bob.user_id]).json()
        events = body["rooms"]["join"][room_a]["timeline"]["events"]
        assert [e["event_id"] for e in events] == [sent.json()["event_id"]]
        # The same wake-up that woke bob left carol (another room) asleep.
        assert notifier.woken[carol.user_id] == carol_before
        assert not polls[carol.user_id].done()
        polls[carol.user_id].cancel()


def test_a_pending_waiter_is_woken_by_any_room() -> None:
    notifier = Notifier()
    with notifier.listen("@a:x") as waiter:
        # Its rooms are not known yet (the answer is being built): a change anywhere wakes it.
        notifier._deliver(WakeUp(room_id="!other:x", stream="events", position=7))
        assert waiter.woken
        assert waiter.moved == {"events": 7}


def test_the_room_index_follows_watching_waiters() -> None:
    notifier = Notifier()
    with notifier.listen("@a:x") as first, notifier.listen("@b:x") as second:
        notifier.watch(first, ["!r1:x", "!r2:x"])
        notifier.watch(second, ["!r2:x"])
        assert notifier.users_waiting_in("!r2:x") == {"@a:x", "@b:x"}
        notifier._deliver(WakeUp(room_id="!r1:x"))
        assert first.woken and not second.woken
        # A wake-up may also name users the room cannot (an invitee).
        notifier._deliver(WakeUp(users=("@b:x",), room_id="!r9:x"))
        assert second.woken
        notifier.watch(first, ["!r3:x"])  # rooms changed: the index follows
        assert notifier.users_waiting_in("!r1:x") == set()
    assert notifier.users_waiting_in("!r2:x") == set() and notifier.waiting_users == 0


def test_a_room_wake_up_stays_small_whatever_the_room_size() -> None:
    message = WakeUp(users=(), room_id="!room:example.org", stream="events", position=123456, origin="hs1/ab12")
    encoded = message.encode()
    assert len(encoded) < 100
    assert WakeUp.decode(encoded) == message
    assert WakeUp.decode("not json") is None and WakeUp.decode('{"u": [1]}') is None


def test_one_users_second_long_poll_stays_indexed_when_the_first_ends() -> None:
    """Two devices of one user long-poll the same room; when one answers, a room wake-up still reaches the other."""
    notifier = Notifier()
    with notifier.listen("@a:x") as second:
        with notifier.listen("@a:x") as first:
            notifier.watch(first, ["!r:x"])
            notifier.watch(second, ["!r:x"])
        assert notifier.users_waiting_in("!r:x") == {"@a:x"}
        notifier._deliver(WakeUp(room_id="!r:x", stream="events", position=4))
        assert second.woken and second.moved == {"events": 4}
    assert notifier.users_waiting_in("!r:x") == set() and notifier.waiting_users == 0


def test_each_delivered_wake_up_is_counted_once() -> None:
    """/metrics exports the total; the per-user counts say whom a wake-up reached."""
    notifier = Notifier()
    with notifier.listen("@a:x") as first, notifier.listen("@a:x") as second, notifier.listen("@b:x") as third:
        notifier.watch(first, ["!r:x"])
        notifier.watch(second, ["!r:x"])
        notifier.watch(third, ["!s:x"])
        notifier._deliver(WakeUp(room_id="!r:x", stream="events", position=3))
        assert first.woken and second.woken and not third.woken
        assert notifier.wakeups == 2
        assert notifier.woken == Counter({"@a:x": 2})
        # A later, lower position of the same stream does not move the waiter's mark back.
        notifier._deliver(WakeUp(room_id="!r:x", stream="events", position=2))
        assert first.moved == {"events": 3}
        # A wake-up that names a stream but no position wakes without recording a position.
        notifier._deliver(WakeUp(room_id="!r:x", stream="typing"))
        assert first.moved == {"events": 3} and notifier.wakeups == 6


@pytest.mark.parametrize("bus", ["database-queue", "redis"])
async def test_a_stopped_server_leaves_no_listener_running(make_config: Any, bus: str) -> None:
    """Shutdown ends the task that listens for other instances' wake-ups, whichever bus carries them."""
    config = make_config(**({"redis_url": require_redis()} if bus == "redis" else {}))
    before = asyncio.all_tasks()
    async with serve_homeserver(config) as one:
        await one.register()
        assert len(asyncio.all_tasks() - before) > 0
    assert asyncio.all_tasks() - before == set()

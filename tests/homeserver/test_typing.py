"""Typing notifications: PUT /rooms/{roomId}/typing/{userId}, m.typing in /sync, expiry."""

from __future__ import annotations

import asyncio
from typing import Any

from homeserver.services.clock import ManualClock
from tests.homeserver.test_receipts_helpers import create_room, ephemeral, q, sync, sync_until
from tests.support.server import Account, RunningServer, serve_homeserver


def typers(body: dict[str, Any], room_id: str) -> list[str] | None:
    """The last m.typing list of the room in a sync response (None if absent)."""
    events = ephemeral(body, room_id, "m.typing")
    if not events:
        return None
    assert set(events[-1]) == {"type", "content"}
    user_ids: list[str] = events[-1]["content"]["user_ids"]
    return user_ids


async def set_typing(server: RunningServer, account: Account, room_id: str, typing: bool,
                     timeout_ms: int | None = 30_000) -> None:
    body: dict[str, Any] = {"typing": typing}
    if timeout_ms is not None and typing:
        body["timeout"] = timeout_ms
    response = await server.api("PUT", f"rooms/{q(room_id)}/typing/{q(account.user_id)}", account, json=body)
    assert response.status_code == 200, response.text
    assert response.json() == {}


async def test_typing_reaches_the_room(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    room_id = await create_room(server, alice, bob)
    bob_initial = await sync(server, bob)
    assert typers(bob_initial, room_id) is None
    carol_initial = await sync(server, carol)

    # A waiting long-poll wakes when Alice starts typing.
    waiting = asyncio.create_task(sync(server, bob, bob_initial["next_batch"], timeout_ms=10_000))
    await asyncio.sleep(0.1)
    await set_typing(server, alice, room_id, True)
    woken = await asyncio.wait_for(waiting, 15)
    assert typers(woken, room_id) == [alice.user_id]

    # Refreshing while typing changes nothing visible.
    await set_typing(server, alice, room_id, True)
    quiet = await sync(server, bob, woken["next_batch"], timeout_ms=200)
    assert typers(quiet, room_id) is None

    # An initial sync shows who types now.
    assert typers(await sync(server, bob), room_id) == [alice.user_id]
    await set_typing(server, bob, room_id, True)
    assert typers(await sync(server, alice), room_id) == sorted([alice.user_id, bob.user_id])

    # Stopping sends the shorter list.
    await set_typing(server, alice, room_id, False)
    stopped = await sync(server, bob, quiet["next_batch"])
    assert typers(stopped, room_id) == [bob.user_id]
    await set_typing(server, bob, room_id, False)
    after = await sync(server, alice, stopped["next_batch"])
    assert typers(after, room_id) == []
    # Stopping again is a no-op.
    await set_typing(server, bob, room_id, False)

    # Carol is in no shared room and sees nothing of it.
    carol_next = await sync(server, carol, carol_initial["next_batch"], timeout_ms=200)
    assert room_id not in carol_next.get("rooms", {}).get("join", {})


async def test_typing_refusals(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice)
    path = f"rooms/{q(room_id)}/typing/{q(alice.user_id)}"
    other = await server.api("PUT", path, bob, json={"typing": True, "timeout": 1000})
    assert other.status_code == 403
    assert other.json()["errcode"] == "M_FORBIDDEN"
    not_joined = await server.api(
        "PUT", f"rooms/{q(room_id)}/typing/{q(bob.user_id)}", bob, json={"typing": True}
    )
    assert not_joined.status_code == 403
    assert not_joined.json()["errcode"] == "M_FORBIDDEN"
    unknown_room = await server.api(
        "PUT", f"rooms/{q('!nope:' + server.config.server_name)}/typing/{q(alice.user_id)}", alice,
        json={"typing": True},
    )
    assert unknown_room.status_code == 403
    for body, errcode in (
        ({}, "M_MISSING_PARAM"),
        ({"typing": "yes"}, "M_BAD_JSON"),
        ({"typing": True, "timeout": -5}, "M_BAD_JSON"),
        ({"typing": True, "timeout": "30000"}, "M_BAD_JSON"),
    ):
        response = await server.api("PUT", path, alice, json=body)
        assert response.status_code == 400, body
        assert response.json()["errcode"] == errcode, body
    bad_room = await server.api("PUT", f"rooms/not-a-room/typing/{q(alice.user_id)}", alice, json={"typing": True})
    assert bad_room.status_code == 400
    assert bad_room.json()["errcode"] == "M_INVALID_PARAM"
    bad_user = await server.api("PUT", f"rooms/{q(room_id)}/typing/alice", alice, json={"typing": True})
    assert bad_user.status_code == 400
    assert bad_user.json()["errcode"] == "M_INVALID_PARAM"


async def test_typing_expires_on_its_own(server: RunningServer) -> None:
    """The expiry timer clears the flag and wakes the room's long-polls."""
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    initial = await sync(server, bob)
    await set_typing(server, alice, room_id, True, timeout_ms=1000)
    started = await sync_until(server, bob, initial["next_batch"],
                               lambda b: typers(b, room_id) is not None)
    if typers(started, room_id) == [alice.user_id]:
        # Nobody calls anything: the expiry alone produces the empty list.
        expired = await sync_until(server, bob, started["next_batch"],
                                   lambda b: typers(b, room_id) is not None, timeout_ms=10_000)
        assert typers(expired, room_id) == []
    # (On a very slow machine the first sync may already come after the expiry.)
    assert typers(await sync(server, bob), room_id) is None


async def test_typing_expiry_from_the_database(make_config: Any) -> None:
    """Expiry is decided by the stored deadline (the housekeeper path), not process memory."""
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        bob = await server.register()
        room_id = await create_room(server, alice, bob)
        await set_typing(server, alice, room_id, True, timeout_ms=20_000)
        before = await sync(server, bob)
        assert typers(before, room_id) == [alice.user_id]

        typing = server.hs.services.typing
        db = server.hs.database

        async def typing_in_room() -> int:
            # Counted for this room only: other tests share the database, and
            # their typing rows expire too when this test's clock jumps.
            row = await db.fetch_one(
                "SELECT COUNT(*) AS n FROM typing WHERE room_id = ? AND active = 1", (room_id,))
            assert row is not None
            return int(row["n"])

        with db.activated():
            clock.advance(10_000)
            await typing.expire_due()
            assert await typing_in_room() == 1
            clock.advance(10_001)
            # Past the deadline an initial sync already leaves Alice out...
            assert typers(await sync(server, bob), room_id) is None
            # ...and expiring records the change for incremental syncs.
            assert await typing.expire_due() >= 1
            assert await typing_in_room() == 0
            await typing.housekeeping()
        after = await sync(server, bob, before["next_batch"])
        assert typers(after, room_id) == []
        # Timeouts are capped (2 minutes).
        await set_typing(server, alice, room_id, True, timeout_ms=10**9)
        clock.advance(120_001)
        assert typers(await sync(server, bob), room_id) is None

"""How many SQL statements a send and an incremental /sync issue (counted, not timed).

A regression guard for #18/#12: a send issued 23 statements and an
incremental /sync that finds one new event 23 before the per-request
lookups were merged and remembered; the bounds below are today's counts.
Statements are counted where Tortoise hands them to the driver
(``tests/support/statements.py``): raw SQL, ORM calls and a transaction's
BEGIN/COMMIT alike; a failing bound prints the statements it counted.
"""

from __future__ import annotations

from typing import Any

from homeserver.services.clock import ManualClock
from tests.homeserver.room_helpers import create_room, send_text, sync, timeline
from tests.support.server import RunningServer, serve_homeserver
from tests.support.statements import counting_statements

# MariaDB locks the room and reads its forward extremities in two statements.
SEND_STATEMENTS = {"sqlite": 16, "mysql": 17}
SYNC_STATEMENTS = {"sqlite": 5, "mysql": 5}


async def test_a_send_and_an_incremental_sync_stay_within_their_statements(make_config: Any) -> None:
    # A clock that stands still: no interval-bound write (rate-limit counter sync,
    # last-seen, presence heartbeat) falls into the counted requests by chance.
    async with serve_homeserver(make_config(), clock=ManualClock()) as server:
        await _count(server)


async def _count(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    assert (await server.api("POST", f"join/{room}", bob)).status_code == 200
    for i in range(3):
        await send_text(server, alice, room, f"warm {i}")
    # The to-device stream is past 0, as in a database that earlier tests used: a sync
    # then has something at or before its since to acknowledge (the statement that made
    # CI count one more than a fresh database did).
    sent_to_device = await server.api("PUT", "sendToDevice/m.test/t1", alice,
                                      json={"messages": {alice.user_id: {alice.device_id: {"n": 1}}}})
    assert sent_to_device.status_code == 200, sent_to_device.text
    # Bob's last-seen and presence writes are behind him (his first sync).
    since = (await sync(server, bob))["next_batch"]

    sent: list[list[str]] = []
    synced: list[list[str]] = []
    for i in range(3):
        with counting_statements() as one_send:
            await send_text(server, alice, room, f"counted {i}")
        with counting_statements() as one_sync:
            body = await sync(server, bob, since=since)
        since = body["next_batch"]
        assert [e["content"]["body"] for e in timeline(body, room)] == [f"counted {i}"]
        sent.append(one_send.busiest())
        synced.append(one_sync.busiest())
    dialect = server.hs.database.dialect
    for statements in sent:
        assert 0 < len(statements) <= SEND_STATEMENTS[dialect], "\n".join(statements)
    for statements in synced:
        assert 0 < len(statements) <= SYNC_STATEMENTS[dialect], "\n".join(statements)

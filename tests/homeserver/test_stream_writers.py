"""Several writers on several instances share the events stream without one global row lock.

Each "instance" is its own :class:`Database` (its own connection pool) on one
fresh MariaDB database.  Writers claim positions, hold their transactions
open for a while (as auth checks and signing do), and some fail; readers on
every instance page through the rows as far as they are served.  No reader
may skip, repeat or reorder a row.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest

from homeserver.services.events import compute_event_id
from homeserver.storage.database import Database
from homeserver.storage.events import EventRepository
from homeserver.storage.streams import StreamRepository
from tests.homeserver.room_helpers import create_room, sync
from tests.support.databases import mysql_database
from tests.support.server import RunningServer, serve_homeserver, test_config

INSTANCES, WRITERS_PER_INSTANCE, WRITES_PER_WRITER = 3, 4, 15


class WriteFailed(Exception):
    pass


@pytest.fixture
def fresh_mysql_url() -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        pytest.skip("several writers need MySQL/MariaDB (SQLite serialises every writer anyway)")
    with mysql_database("parley_writers") as url:
        yield url


@pytest.fixture
async def instances(fresh_mysql_url: str) -> AsyncIterator[list[tuple[Database, StreamRepository]]]:
    out = []
    for _ in range(INSTANCES):
        db = Database(fresh_mysql_url)
        await db.open()
        out.append((db, StreamRepository(db, multi_writer=True, stale_claim_ms=500)))
    first = out[0][0]
    with first.activated():
        await out[0][1].prepare(["events"])
        await first.execute("CREATE TABLE probe_events (pos BIGINT NOT NULL PRIMARY KEY, writer VARCHAR(32))")
    yield out
    for db, streams in out:
        await streams.close()
        await db.close()


async def _write(db: Database, streams: StreamRepository, writer: str, fail: bool) -> int:
    claimed = await streams.claim("events")
    try:
        async with db.transaction() as conn:
            position = await streams.advance(conn, "events", 1, claimed)
            await db.execute("INSERT INTO probe_events (pos, writer) VALUES (?, ?)", (position, writer), conn=conn)
            await asyncio.sleep(random.uniform(0, 0.02))  # auth checks, signing: the lock is not held
            if fail:
                raise WriteFailed()
        return position
    except BaseException:
        await streams.abandon("events", claimed or [])
        raise


async def test_no_reader_skips_repeats_or_reorders_under_concurrent_writers(
    instances: list[tuple[Database, StreamRepository]],
) -> None:
    committed: list[int] = []
    writing_done = asyncio.Event()

    async def writer(index: int, name: str) -> None:
        db, streams = instances[index]
        with db.activated():
            for _ in range(WRITES_PER_WRITER):
                try:
                    committed.append(await _write(db, streams, name, fail=random.random() < 0.1))
                except WriteFailed:
                    pass

    async def reader(index: int) -> list[int]:
        db, streams = instances[index]
        seen: list[int] = []
        last = 0
        with db.activated():
            while True:
                served = await streams.current("events")
                assert served >= last, "the served position went backwards"
                rows = await db.fetch("SELECT pos FROM probe_events WHERE pos > ? AND pos <= ? ORDER BY pos",
                                      (last, served))
                seen.extend(int(r["pos"]) for r in rows)
                last = served
                if writing_done.is_set() and committed and last >= max(committed):
                    return seen
                await asyncio.sleep(0.005)

    readers = [asyncio.create_task(reader(i)) for i in range(INSTANCES)]
    await asyncio.gather(*(writer(i % INSTANCES, f"w{i}") for i in range(INSTANCES * WRITERS_PER_INSTANCE)))
    writing_done.set()
    results = await asyncio.wait_for(asyncio.gather(*readers), 60)
    assert len(committed) > INSTANCES * WRITERS_PER_INSTANCE * WRITES_PER_WRITER // 2
    for seen in results:
        assert seen == sorted(committed), "a reader skipped, repeated or reordered a row"
    db, _ = instances[0]
    with db.activated():
        assert await db.fetch("SELECT * FROM stream_claims") == [], "a failed write left its claim open"


async def test_a_dead_writers_claim_stops_readers_only_until_it_expires(
    instances: list[tuple[Database, StreamRepository]],
) -> None:
    db, streams = instances[0]
    with db.activated():
        before = await streams.current("events")
        await streams.claim("events")  # ... and the process dies before its transaction
        after_write = await _write(db, streams, "live", fail=False)
        # The live write committed, but readers are held below the open claim.
        assert await streams.current("events") == before
        for _ in range(200):
            if await streams.current("events") == after_write:
                break
            await asyncio.sleep(0.05)
        assert await streams.current("events") == after_write
        assert await db.fetch("SELECT * FROM stream_claims") == []


async def test_a_claim_held_by_a_live_transaction_is_never_expired(
    instances: list[tuple[Database, StreamRepository]],
) -> None:
    db, streams = instances[0]
    other_db, other = instances[1]

    async def served_elsewhere() -> int:
        with other_db.activated():  # another instance, outside this transaction
            return await other.current("events")

    with db.activated():
        claimed = await streams.claim("events")
        async with db.transaction() as conn:
            position = await streams.advance(conn, "events", 1, claimed)
            await asyncio.sleep(1.0)  # longer than the stale-claim age: its lock protects it
            assert await asyncio.create_task(served_elsewhere()) == position - 1
            await db.execute("INSERT INTO probe_events (pos, writer) VALUES (?, ?)", (position, "slow"), conn=conn)
        assert await asyncio.create_task(served_elsewhere()) == position


async def test_one_rooms_writers_on_two_instances_commit_in_position_order(fresh_mysql_url: str,
                                                                         tmp_path: Any) -> None:
    """Writers of one room claim under the room's lock: its stream order is its graph's order.

    (Claimed before the lock, two writers of one room could commit opposite to
    their positions, and the room's events by position no longer formed a chain.)
    """
    first = test_config(fresh_mysql_url, tmp_path / "one", {"database": {"url": fresh_mysql_url,
                                                                          "multi_writer": True}})
    second = test_config(fresh_mysql_url, tmp_path / "two", {"server_name": first.server_name,
                                                              "database": {"url": fresh_mysql_url,
                                                                           "multi_writer": True}})
    async with contextlib.AsyncExitStack() as stack:
        servers: list[RunningServer] = [await stack.enter_async_context(serve_homeserver(c))
                                        for c in (first, second)]
        assert all(s.hs.services.streams.is_multi("events") for s in servers)
        owner = await servers[0].register()
        writers = [await servers[0].register() for _ in range(6)]
        reader = await servers[1].register()
        room = await create_room(servers[0], owner, preset="public_chat")
        for user in [*writers, reader]:
            assert (await servers[0].api("POST", f"rooms/{room}/join", user, json={})).status_code == 200
        since = (await sync(servers[1], reader))["next_batch"]
        sent: list[str] = []

        async def write(index: int) -> None:
            server = servers[index % 2]
            for n in range(20):
                response = await server.api("PUT", f"rooms/{room}/send/m.room.message/o{index}-{n}",
                                            writers[index], json={"msgtype": "m.text", "body": f"{index}:{n}"})
                assert response.status_code == 200, response.text
                sent.append(response.json()["event_id"])

        await asyncio.gather(*(write(i) for i in range(len(writers))))
        db = servers[0].hs.database
        with db.activated():
            rows = await db.fetch("SELECT pdu FROM events WHERE room_id = ? ORDER BY stream_pos", (room,))
            assert await db.fetch("SELECT * FROM stream_claims") == []
        pdus = [json.loads(r["pdu"]) for r in rows]
        for before, after in zip(pdus, pdus[1:], strict=False):
            assert after["prev_events"] == [compute_event_id(before)], "stream order differs from the graph's"
        # A reader on the other instance gets every message once, in that order.
        seen: list[str] = []
        flt = json.dumps({"room": {"timeline": {"limit": 500}}})
        while len(seen) < len(sent):
            body = await sync(servers[1], reader, since=since, timeout=5000, filter=flt)
            section = body["rooms"]["join"].get(room)
            if section is not None:
                seen += [e["event_id"] for e in section["timeline"]["events"] if e["type"] == "m.room.message"]
            since = body["next_batch"]
        by_position = [compute_event_id(p) for p in pdus if p["type"] == "m.room.message"]
        assert seen == by_position and sorted(seen) == sorted(sent)


async def _counter(db: Database) -> int:
    row = await db.fetch_one("SELECT position FROM stream_positions WHERE stream = 'events'")
    assert row is not None
    return int(row["position"])


async def test_a_rooms_second_writer_claims_only_once_the_first_has_committed(
    instances: list[tuple[Database, StreamRepository]],
) -> None:
    (db, streams), (other_db, other_streams), (watch_db, _) = instances
    events, other_events = EventRepository(db, streams), EventRepository(other_db, other_streams)
    room = "!ordered:example.org"
    with db.activated():
        async with events.write(room, 1) as creating:
            await creating.create_room("10", "@a:example.org", False, 0)
        async with events.write(room, 1) as first:
            await first.lock_room()
            (mine,) = first.positions

            async def second() -> int:
                with other_db.activated():  # another instance
                    async with other_events.write(room, 1) as writer:
                        await writer.lock_room()
                        return writer.positions[0]

            task = asyncio.create_task(second())
            # Wait until the second writer waits for the room's lock: its locking read of the
            # room's row is in flight (MariaDB 10.11 shows that read in the processlist, in state
            # "Statistics", without listing its transaction as LOCK WAIT in INNODB_TRX).
            with watch_db.activated():
                for _ in range(2000):
                    rows = await watch_db.fetch(
                        "SELECT COUNT(*) AS n FROM information_schema.PROCESSLIST WHERE COMMAND = 'Query' "
                        "AND INSTR(INFO, 'FROM rooms WHERE room_id') > 0 AND INSTR(INFO, 'FOR UPDATE') > 0")
                    if rows and int(rows[0]["n"]) >= 1:
                        break
                    if task.done():
                        await task  # it failed: say how
                        raise AssertionError("the second writer did not wait for the room's lock")
                    await asyncio.sleep(0.01)
                else:
                    raise AssertionError("the second writer never waited for the room's lock")
                # It has claimed nothing while the room is locked by the first.
                assert await _counter(watch_db) == mine
        theirs = await task
    assert theirs == mine + 1


async def test_an_open_batch_write_does_not_hold_back_other_claims(
    instances: list[tuple[Database, StreamRepository]],
) -> None:
    """A writer of several positions takes record locks only: a range DELETE of its claims
    would lock the gap above them, and every later claim would wait for its commit."""
    (db, streams), (other_db, other), _ = instances

    async def claim_elsewhere() -> list[int] | None:
        with other_db.activated():  # another instance
            return await other.claim("events")

    with db.activated():
        claimed = await streams.claim("events", 3)
        assert claimed is not None
        async with db.transaction() as conn:
            await streams.advance(conn, "events", 3, claimed)
            # While this batch is uncommitted: a liveness bound, not a timing claim.
            got = await asyncio.wait_for(asyncio.create_task(claim_elsewhere()), 60)
            assert got == [max(claimed) + 1]
    with other_db.activated():
        await other.abandon("events", got or [])


async def test_writers_of_neighbouring_rooms_do_not_deadlock(
    instances: list[tuple[Database, StreamRepository]],
) -> None:
    """Two rooms locked at once, each writer moving its room's extremity.

    A locking read of the extremities (the room lock once read them FOR UPDATE)
    took next-key locks reaching into the next room's rows: each writer then
    waited for the other's, and MariaDB rolled one back as a deadlock.
    """
    (db, streams), (other_db, other_streams), _ = instances
    repos = [(db, EventRepository(db, streams)), (other_db, EventRepository(other_db, other_streams))]
    rooms = ("!n1:example.org", "!n2:example.org")  # neighbours in room_extremities' primary key
    # The first room's new extremity sorts after its old one, the second's before its
    # old one: both land in the gap between the two rooms' rows.
    moves = {rooms[0]: ("$a1", "$z1"), rooms[1]: ("$m2", "$b2")}
    with db.activated():
        for room in rooms:
            async with repos[0][1].write(room, 1) as creating:
                await creating.create_room("10", "@a:example.org", False, 0)
                await creating.graph.replace_extremities(creating.conn, room, [], [moves[room][0]])
    locked = [asyncio.Event(), asyncio.Event()]

    async def write(i: int) -> None:
        database, events = repos[i]
        with database.activated():
            async with events.write(rooms[i], 1) as writer:
                assert await writer.lock_room() is not None
                locked[i].set()
                await locked[1 - i].wait()  # both rooms are locked now
                old, new = moves[rooms[i]]
                await writer.graph.replace_extremities(writer.conn, rooms[i], [old], [new])

    # A liveness bound, not a timing claim.
    await asyncio.wait_for(asyncio.gather(write(0), write(1)), 120)
    with db.activated():
        for room in rooms:
            rows = await db.fetch("SELECT event_id FROM room_extremities WHERE room_id = ?", (room,))
            assert [r["event_id"] for r in rows] == [moves[room][1]]

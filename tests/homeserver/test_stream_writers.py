"""Several writers on several instances share the events stream without one global row lock.

Each "instance" is its own :class:`Database` (its own connection pool) on one
fresh MariaDB database.  Writers claim positions, hold their transactions
open for a while (as auth checks and signing do), and some fail; readers on
every instance page through the rows as far as they are served.  No reader
may skip, repeat or reorder a row.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator, Iterator

import pytest

from homeserver.storage.database import Database
from homeserver.storage.streams import StreamRepository
from tests.support.databases import mysql_database

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
    for db, _ in out:
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

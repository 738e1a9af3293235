"""Rate-limit counters in memory between syncs with the shared database row.

Two :class:`BufferedCounters` on one real database stand for two instances
of a deployment without Redis.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator

import pytest

from common.errors import MatrixError
from homeserver.services.clock import ManualClock
from homeserver.services.ratelimit import DatabaseCounters, Limit, RateLimiter
from homeserver.services.ratelimit_buffer import BufferedCounters
from homeserver.storage.database import Database
from homeserver.storage.ratelimits import RateLimitRepository

WINDOW = 60_000
START = 1_800_000_000_000  # a window's start


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url)
    await database.open()
    try:
        with database.activated():
            yield database
    finally:
        await database.close()


def buffered(db: Database, clock: ManualClock) -> BufferedCounters:
    return BufferedCounters(DatabaseCounters(RateLimitRepository(db)), clock, sync_ms=1000)


async def shared_hits(db: Database, bucket: str) -> int:
    row = await db.fetch_one("SELECT hits FROM rate_limits WHERE bucket = ?", (bucket,))
    return int(row["hits"]) if row else 0


async def test_hits_between_syncs_stay_in_memory_and_reach_the_row_at_the_next_sync(db: Database) -> None:
    clock = ManualClock(START)
    counters = buffered(db, clock)
    bucket = f"buf-{secrets.token_hex(4)}"
    assert await counters.hit(bucket, START, WINDOW) == 1
    assert await shared_hits(db, bucket) == 1  # the first hit of a window is shared at once
    for expected in range(2, 6):
        assert await counters.hit(bucket, START, WINDOW) == expected
    assert await shared_hits(db, bucket) == 1
    clock.advance(1000)
    assert await counters.hit(bucket, START, WINDOW) == 6
    assert await shared_hits(db, bucket) == 6


async def test_two_instances_see_each_others_hits_within_a_sync(db: Database) -> None:
    clock = ManualClock(START)
    one, two = buffered(db, clock), buffered(db, clock)
    bucket = f"buf-{secrets.token_hex(4)}"
    for _ in range(3):
        await one.hit(bucket, START, WINDOW)
    # Its first hit of the window reads the total of every instance.
    assert await two.hit(bucket, START, WINDOW) == 2
    clock.advance(1000)
    assert await one.hit(bucket, START, WINDOW) == 5
    assert await two.hit(bucket, START, WINDOW) == 6
    assert await shared_hits(db, bucket) == 6


async def test_a_new_window_starts_from_zero_and_the_limit_holds(db: Database) -> None:
    clock = ManualClock(START)
    limiter = RateLimiter(buffered(db, clock), clock, namespace=f"ns{secrets.token_hex(3)}")
    limit = Limit("messages", 3)
    for _ in range(3):
        await limiter.check(limit, "@a:x")
    with pytest.raises(MatrixError) as refused:
        await limiter.check(limit, "@a:x")
    assert refused.value.errcode == "M_LIMIT_EXCEEDED"
    clock.advance(WINDOW)
    await limiter.check(limit, "@a:x")


async def test_concurrent_hits_during_a_sync_are_all_counted(db: Database) -> None:
    clock = ManualClock(START)
    counters = buffered(db, clock)
    bucket = f"buf-{secrets.token_hex(4)}"
    seen = await asyncio.gather(*(counters.hit(bucket, START, WINDOW) for _ in range(20)))
    assert max(seen) == 20
    clock.advance(1000)
    assert await counters.hit(bucket, START, WINDOW) == 21
    assert await shared_hits(db, bucket) == 21


async def test_count_reset_and_cleanup(db: Database) -> None:
    clock = ManualClock(START)
    counters = buffered(db, clock)
    bucket = f"buf-{secrets.token_hex(4)}"
    for _ in range(4):
        await counters.hit(bucket, START, WINDOW)
    assert await counters.count(bucket, START) == 4
    await counters.reset(bucket)
    assert await counters.count(bucket, START) == 0
    assert await shared_hits(db, bucket) == 0
    await counters.hit(bucket, START, WINDOW)
    clock.advance(2 * 3_600_000)
    await counters.cleanup(clock.now_ms() - 3_600_000)
    assert counters.held() == 0
    assert await shared_hits(db, bucket) == 0

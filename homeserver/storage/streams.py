"""Stream positions: the ordering behind every incremental /sync.

Each kind of change (room events, receipts, typing, presence, to-device,
device lists, account data, ...) has one counter row in
``stream_positions``.  A reader must never skip a row: having been served
position P, it must never later find a new row at a position <= P.

*Single writer* (every stream on SQLite, the quieter streams on MySQL): a
writer calls :meth:`StreamRepository.advance` inside the transaction that
inserts its row; the ``UPDATE`` holds the counter row's lock until commit,
so positions commit in increasing order.  Readers are served the counter.

*Several writers* (the ``events`` stream on MySQL/MariaDB, the one every
room write of a deployment uses): holding the counter's lock through auth
checks, signing and inserts would make the whole deployment one writer.
Instead (the idea of Synapse's ``MultiWriterIdGenerator``):

1. the writer begins its transaction and locks its room; only then is the
   position *claimed*, in a short transaction of its own on a dedicated
   connection (``stream_claims.py``): the counter moves and a
   ``stream_claims`` row records the open claim, atomically
   (:meth:`StreamRepository.claim`, from ``RoomWriter.allocate``);
2. the writer's transaction deletes its claim row (taking its lock) and
   inserts its rows; its commit makes both visible at once;
3. readers are served the position just below the lowest open claim, read
   with the counter in one statement (one snapshot): every position up to it
   is either committed or will never exist.

Because a room's writers claim while holding the room's lock, they take their
positions in the order they commit: a room's stream order is its graph's
order.  Writers of different rooms overlap freely.

A failed write releases its claim (:meth:`abandon`); the claim of a writer
that died (``kill -9``) is removed after ``STALE_CLAIM_MS`` unless a live
transaction still locks it, so readers stall at most that long.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence

from tortoise.backends.base.client import BaseDBAsyncClient

from homeserver.storage.database import Database
from homeserver.storage.stream_claims import ClaimConnection, UnknownStreamRow

logger = logging.getLogger(__name__)

MULTI_WRITER_STREAMS = frozenset({"events"})
STALE_CLAIM_MS = 5_000
# Not a stream of /sync but a counter in the same table, read with the streams: it moves
# whenever an access token is deleted or an account's flags change, so an instance that
# remembers tokens knows, from the positions every /sync reads, when to look again.
AUTH_COUNTER = "auth"
COUNTERS = (AUTH_COUNTER,)


async def bump_counter(db: Database, counter: str, conn: BaseDBAsyncClient | None = None) -> None:
    """Move a counter row (prepared at start-up like the streams) by one."""
    await db.execute("UPDATE stream_positions SET position = position + 1 WHERE stream = ?", (counter,), conn=conn)


class UnknownStream(RuntimeError):
    """A stream was advanced that :meth:`StreamRepository.prepare` never created."""


class ClaimLost(RuntimeError):
    """A claim was removed as stale before its writer's transaction took it (the write is retried)."""

    def __init__(self) -> None:
        super().__init__("stream position claim expired before the write; try again")
        # Rolled back before anything was written: as safe to repeat as a deadlock.
        self.args = (1213, str(self))


class StreamRepository:
    def __init__(self, db: Database, multi_writer: bool = False, stale_claim_ms: int = STALE_CLAIM_MS) -> None:
        self.db = db
        self.multi_writer = multi_writer and db.dialect == "mysql"
        self.stale_claim_ms = stale_claim_ms
        self._claims: ClaimConnection | None = None

    def _is_multi(self, stream: str) -> bool:
        return self.multi_writer and stream in MULTI_WRITER_STREAMS

    def is_multi(self, stream: str) -> bool:
        """Whether writers of ``stream`` claim positions (else they advance the counter row)."""
        return self._is_multi(stream)

    async def prepare(self, streams: Iterable[str]) -> None:
        """Create the counter rows at start-up, outside any write transaction.

        Creating them lazily inside writers' transactions deadlocked on MySQL:
        a duplicate ``INSERT IGNORE`` takes a shared lock on the row, and two
        writers holding it then both wait to upgrade it for their ``UPDATE``.
        """
        for stream in streams:
            await self.db.execute(
                self.db.insert_ignore_sql("stream_positions", ["stream", "position"]), (stream, 0)
            )

    async def claim(self, stream: str, count: int = 1) -> list[int] | None:
        """Several writers: claim ``count`` positions, committed at once on a connection of
        their own (``stream_claims.py``), so a writer may claim while it holds its room's lock.

        Returns None for a single-writer stream (:meth:`advance` allocates in
        the transaction).
        """
        if not self._is_multi(stream):
            return None
        if self._claims is None:
            self._claims = ClaimConnection(self.db.url)
        try:
            last = await self._claims.claim(stream, count)
        except UnknownStreamRow as exc:
            raise UnknownStream(str(exc)) from None
        return list(range(last - count + 1, last + 1))

    async def close(self) -> None:
        if self._claims is not None:
            await self._claims.close()

    async def advance(self, conn: BaseDBAsyncClient, stream: str, count: int = 1,
                      claimed: Sequence[int] | None = None) -> int:
        """Reserve ``count`` positions for the caller's transaction; return the last.

        The caller must run this in the same transaction as the rows it writes,
        and should call it before taking other locks.  With ``claimed`` (from
        :meth:`claim`) the transaction takes those claims instead: they vanish
        when it commits.
        """
        if claimed:
            # One equality on the whole primary key per position: record locks only.
            # A range (or an IN list, which the optimiser may turn into one) also
            # locks the gap above the highest claim, and every later claim's INSERT
            # would then wait for this transaction's commit.
            taken = 0
            for position in claimed:
                taken += await self.db.execute(
                    "DELETE FROM stream_claims WHERE stream = ? AND position = ?", (stream, position), conn=conn,
                )
            if taken != len(claimed):
                raise ClaimLost()
            return max(claimed)
        updated = await self.db.execute(
            "UPDATE stream_positions SET position = position + ? WHERE stream = ?",
            (count, stream),
            conn=conn,
        )
        if not updated:
            raise UnknownStream(f"stream {stream!r} was not prepared at start-up")
        # A locking read (the row is ours already): it opens no read view, so a
        # writer's later plain reads see what was committed before its locks.
        lock = " FOR UPDATE" if self.db.dialect == "mysql" else ""
        row = await self.db.fetch_one(
            f"SELECT position FROM stream_positions WHERE stream = ?{lock}", (stream,), conn=conn
        )
        assert row is not None
        return int(row["position"])

    async def abandon(self, stream: str, positions: Sequence[int]) -> None:
        """Release the claims of a write that failed (no-op for committed ones and single writers)."""
        if not positions or not self._is_multi(stream):
            return
        try:
            await self.db.execute(
                "DELETE FROM stream_claims WHERE stream = ? AND position >= ? AND position <= ?",
                (stream, min(positions), max(positions)),
            )
        except Exception:
            logger.warning("could not release stream claims %s (they expire)", list(positions), exc_info=True)

    async def current(self, stream: str) -> int:
        return (await self.current_all()).get(stream, 0)

    async def current_all(self) -> dict[str, int]:
        """The position of every stream that readers may be served (all below it is persisted)."""
        if not self.multi_writer:
            rows = await self.db.fetch("SELECT stream, position FROM stream_positions")
            return {str(r["stream"]): int(r["position"]) for r in rows}
        # One statement: the counters and the open claims from one snapshot.
        rows = await self.db.fetch(
            "SELECT sp.stream, sp.position, "
            "(SELECT MIN(c.position) FROM stream_claims c WHERE c.stream = sp.stream) AS lowest, "
            "(SELECT MIN(c.created_ms) FROM stream_claims c WHERE c.stream = sp.stream) AS oldest "
            "FROM stream_positions sp"
        )
        out: dict[str, int] = {}
        stale: list[str] = []
        for r in rows:
            stream, position, lowest = str(r["stream"]), int(r["position"]), r["lowest"]
            out[stream] = position if lowest is None else min(position, int(lowest) - 1)
            if r["oldest"] is not None and int(r["oldest"]) < _now_ms() - self.stale_claim_ms:
                stale.append(stream)
        for stream in stale:
            try:
                await self._expire_claims(stream)
            except Exception:  # e.g. a server without SKIP LOCKED: the claims stay, readers still safe
                logger.warning("could not expire stale %s stream claims", stream, exc_info=True)
        return out

    async def _expire_claims(self, stream: str) -> None:
        """Drop old claims no live transaction holds: their writers died (or never started)."""
        async with self.db.transaction() as conn:
            rows = await self.db.fetch(
                "SELECT position FROM stream_claims WHERE stream = ? AND created_ms < ? FOR UPDATE SKIP LOCKED",
                (stream, _now_ms() - self.stale_claim_ms), conn=conn,
            )
            positions = [int(r["position"]) for r in rows]
            for position in positions:
                await self.db.execute("DELETE FROM stream_claims WHERE stream = ? AND position = ?",
                                      (stream, position), conn=conn)
        if positions:
            logger.warning("expired stale %s stream claims %s (a writer died)", stream, positions)


def _now_ms() -> int:
    return int(time.time() * 1000)

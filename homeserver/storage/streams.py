"""Stream positions: the ordering behind every incremental /sync.

Each kind of change (room events, receipts, typing, presence, to-device,
device lists, account data, ...) has one counter row in
``stream_positions``.  A writer calls :meth:`StreamRepository.advance`
*inside the transaction that inserts its row*: the ``UPDATE`` takes the
counter row's lock until commit, so positions of one stream commit in
increasing order, on one instance or many sharing MySQL (SQLite serialises
all writers anyway).  A reader that has seen position P can therefore never
later see a new row at a position <= P: read :meth:`current` first, then
rows with ``since < position <= current``.
"""

from __future__ import annotations

from collections.abc import Iterable

from tortoise.backends.base.client import BaseDBAsyncClient

from homeserver.storage.database import Database


class UnknownStream(RuntimeError):
    """A stream was advanced that :meth:`StreamRepository.prepare` never created."""


class StreamRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

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

    async def advance(self, conn: BaseDBAsyncClient, stream: str, count: int = 1) -> int:
        """Reserve ``count`` positions inside the caller's transaction; return the last.

        The caller must run this in the same transaction as the rows it writes,
        and should call it before taking other locks (it serialises writers).
        """
        updated = await self.db.execute(
            "UPDATE stream_positions SET position = position + ? WHERE stream = ?",
            (count, stream),
            conn=conn,
        )
        if not updated:
            raise UnknownStream(f"stream {stream!r} was not prepared at start-up")
        row = await self.db.fetch_one(
            "SELECT position FROM stream_positions WHERE stream = ?", (stream,), conn=conn
        )
        assert row is not None
        return int(row["position"])

    async def current(self, stream: str) -> int:
        row = await self.db.fetch_one(
            "SELECT position FROM stream_positions WHERE stream = ?", (stream,)
        )
        return int(row["position"]) if row else 0

    async def current_all(self) -> dict[str, int]:
        rows = await self.db.fetch("SELECT stream, position FROM stream_positions")
        return {str(r["stream"]): int(r["position"]) for r in rows}

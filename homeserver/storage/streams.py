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

from tortoise.backends.base.client import BaseDBAsyncClient

from homeserver.storage.database import Database


class StreamRepository:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._known: set[str] = set()

    async def _ensure(self, stream: str) -> None:
        if stream in self._known:
            return
        exists = await self.db.fetch_one(
            "SELECT position FROM stream_positions WHERE stream = ?", (stream,)
        )
        if exists is None:
            # Racing instances may both try; the loser's insert is ignored.
            await self.db.execute(
                self.db.insert_ignore_sql("stream_positions", ["stream", "position"]), (stream, 0)
            )
        self._known.add(stream)

    async def advance(self, conn: BaseDBAsyncClient, stream: str, count: int = 1) -> int:
        """Reserve ``count`` positions inside the caller's transaction; return the last.

        The caller must run this in the same transaction as the rows it writes.
        """
        await self._ensure(stream)
        await self.db.execute(
            "UPDATE stream_positions SET position = position + ? WHERE stream = ?",
            (count, stream),
            conn=conn,
        )
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

"""The database transport of cross-instance wake-ups (used when no Redis is configured)."""

from __future__ import annotations

from homeserver.storage.database import Database


class WakeQueueRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def append(self, origin: str, body: str, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO wake_queue (created_ms, origin, body) VALUES (?, ?, ?)", (now_ms, origin, body)
        )

    async def since(self, created_ms: int) -> list[tuple[int, str, str]]:
        """``(id, origin, body)`` of the rows created at or after ``created_ms``."""
        rows = await self.db.fetch(
            "SELECT id, origin, body FROM wake_queue WHERE created_ms >= ? ORDER BY id", (created_ms,)
        )
        return [(int(r["id"]), str(r["origin"]), str(r["body"])) for r in rows]

    async def delete_older_than(self, created_ms: int) -> int:
        return await self.db.execute("DELETE FROM wake_queue WHERE created_ms < ?", (created_ms,))

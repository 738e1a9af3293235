"""Fixed-window rate-limit counters kept in the database (shared by all instances)."""

from __future__ import annotations

from homeserver.storage.database import Database


class RateLimitRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def hit(self, bucket: str, window_start: int) -> int:
        """Count one hit in ``bucket`` for the window; return the hits so far in it."""
        if self.db.dialect == "mysql":
            upsert = (
                "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?, ?, 1) "
                "ON DUPLICATE KEY UPDATE hits = IF(window_start = VALUES(window_start), hits + 1, 1), "
                "window_start = VALUES(window_start)"
            )
        else:
            upsert = (
                "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?, ?, 1) "
                "ON CONFLICT (bucket) DO UPDATE SET "
                "hits = CASE WHEN rate_limits.window_start = excluded.window_start "
                "THEN rate_limits.hits + 1 ELSE 1 END, window_start = excluded.window_start"
            )
        async with self.db.transaction() as conn:
            await self.db.execute(upsert, (bucket, window_start), conn=conn)
            row = await self.db.fetch_one(
                "SELECT hits FROM rate_limits WHERE bucket = ?", (bucket,), conn=conn
            )
        return int(row["hits"]) if row else 1

    async def count(self, bucket: str, window_start: int) -> int:
        """Hits in ``bucket`` in this window (0 when it has none)."""
        row = await self.db.fetch_one(
            "SELECT hits FROM rate_limits WHERE bucket = ? AND window_start = ?", (bucket, window_start)
        )
        return int(row["hits"]) if row else 0

    async def reset(self, bucket: str) -> None:
        await self.db.execute("DELETE FROM rate_limits WHERE bucket = ?", (bucket,))

    async def delete_older_than(self, window_start: int) -> int:
        return await self.db.execute(
            "DELETE FROM rate_limits WHERE window_start < ?", (window_start,)
        )

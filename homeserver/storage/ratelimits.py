"""Fixed-window rate-limit counters kept in the database (shared by all instances)."""

from __future__ import annotations

from homeserver.storage.database import Database


class RateLimitRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def hit(self, bucket: str, window_start: int, hits: int = 1) -> int:
        """Count ``hits`` in ``bucket`` for the window; return the hits so far in it."""
        if self.db.dialect == "mysql":
            upsert = (
                "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?, ?, ?) "
                "ON DUPLICATE KEY UPDATE hits = IF(window_start = VALUES(window_start), hits + VALUES(hits), "
                "VALUES(hits)), "
                "window_start = VALUES(window_start)"
            )
        else:
            upsert = (
                "INSERT INTO rate_limits (bucket, window_start, hits) VALUES (?, ?, ?) "
                "ON CONFLICT (bucket) DO UPDATE SET "
                "hits = CASE WHEN rate_limits.window_start = excluded.window_start "
                "THEN rate_limits.hits + excluded.hits ELSE excluded.hits END, "
                "window_start = excluded.window_start"
            )
        async with self.db.transaction() as conn:
            await self.db.execute(upsert, (bucket, window_start, hits), conn=conn)
            row = await self.db.fetch_one(
                "SELECT hits FROM rate_limits WHERE bucket = ?", (bucket,), conn=conn
            )
        return int(row["hits"]) if row else hits

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

"""Stored /sync filters: ``(user_id, filter_id) -> filter JSON``."""

from __future__ import annotations

from homeserver.storage.database import Database


class FilterRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def store(self, user_id: str, filter_id: str, filter_json: str, now_ms: int) -> None:
        """Keep the filter; an identical one (same id) already stored is left as it is."""
        await self.db.execute(
            self.db.insert_ignore_sql(
                "filters", ["user_id", "filter_id", "filter_json", "created_ts"]
            ),
            (user_id, filter_id, filter_json, now_ms),
        )

    async def get(self, user_id: str, filter_id: str) -> str | None:
        row = await self.db.fetch_one(
            "SELECT filter_json FROM filters WHERE user_id = ? AND filter_id = ?",
            (user_id, filter_id),
        )
        return str(row["filter_json"]) if row else None

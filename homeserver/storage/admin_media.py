"""Media rows as the admin API lists them (per uploader, by age)."""

from __future__ import annotations

from homeserver.storage.database import Database, Row

_COLUMNS = "media_id, uploader, content_type, size, filename, state, created_ts"


class AdminMediaRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def of_user(self, user_id: str, offset: int, limit: int, descending: bool) -> tuple[list[Row], int]:
        count = await self.db.fetch_one(
            "SELECT COUNT(*) AS n FROM media WHERE uploader = ? AND state = 'complete'", [user_id]
        )
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM media WHERE uploader = ? AND state = 'complete' "
            f"ORDER BY created_ts {'DESC' if descending else 'ASC'}, media_id LIMIT ? OFFSET ?",
            [user_id, limit, offset],
        )
        return rows, int(count["n"]) if count else 0

    async def ids_of_user(self, user_id: str) -> list[str]:
        rows = await self.db.fetch("SELECT media_id FROM media WHERE uploader = ?", [user_id])
        return [str(r["media_id"]) for r in rows]

    async def created_before(self, before_ts: int, size_gt: int) -> list[str]:
        rows = await self.db.fetch(
            "SELECT media_id FROM media WHERE state = 'complete' AND created_ts < ? AND size > ?",
            [before_ts, size_gt],
        )
        return [str(r["media_id"]) for r in rows]

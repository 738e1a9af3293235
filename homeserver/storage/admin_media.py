"""Media rows as the admin API lists them (per uploader, by age)."""

from __future__ import annotations

from homeserver.storage.database import Database, Row

_COLUMNS = "media_id, uploader, content_type, size, filename, state, created_ts"


class AdminMediaRepository:
    """Local media: uploaded by this server's users (``server_name``)."""

    def __init__(self, db: Database, server_name: str) -> None:
        self.db = db
        self.local = "%:" + server_name.replace("%", "").replace("_", "\\_")
        self.esc = "'\\\\'" if db.dialect == "mysql" else "'\\'"

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

    async def touch(self, media_id: str, now_ms: int, granularity_ms: int) -> None:
        """Record a download; at most one write per ``granularity_ms`` per file."""
        updated = await self.db.execute(
            "UPDATE media_access SET last_access_ts = ? WHERE media_id = ? AND last_access_ts < ?",
            [now_ms, media_id, now_ms - granularity_ms],
        )
        if updated == 0:
            await self.db.execute(
                self.db.insert_ignore_sql("media_access", ["media_id", "last_access_ts"]), [media_id, now_ms]
            )

    async def last_access(self, media_ids: list[str]) -> dict[str, int]:
        if not media_ids:
            return {}
        marks = ", ".join("?" for _ in media_ids)
        rows = await self.db.fetch(
            f"SELECT media_id, last_access_ts FROM media_access WHERE media_id IN ({marks})", media_ids
        )
        return {str(r["media_id"]): int(r["last_access_ts"]) for r in rows}

    async def not_accessed_since(self, cutoff: int, limit: int = 500) -> list[str]:
        """Complete media last downloaded (or, never downloaded, uploaded) before ``cutoff``."""
        rows = await self.db.fetch(
            "SELECT m.media_id FROM media m LEFT JOIN media_access a ON a.media_id = m.media_id "
            "WHERE m.state = 'complete' AND COALESCE(a.last_access_ts, m.created_ts) < ? "
            f"AND m.uploader LIKE ? ESCAPE {self.esc} LIMIT ?",
            [cutoff, self.local, limit],
        )
        return [str(r["media_id"]) for r in rows]

    async def forget_access(self, media_ids: list[str]) -> None:
        if media_ids:
            marks = ", ".join("?" for _ in media_ids)
            await self.db.execute(f"DELETE FROM media_access WHERE media_id IN ({marks})", media_ids)

    async def statistics(self, order_by: str, descending: bool, search: str | None, from_ts: int | None,
                         until_ts: int | None) -> list[Row]:
        """Per local uploader: number and total size of complete uploads."""
        where = ["m.state = 'complete'", f"m.uploader LIKE ? ESCAPE {self.esc}"]
        params: list[object] = [self.local]
        if from_ts is not None:
            where.append("m.created_ts >= ?")
            params.append(from_ts)
        if until_ts is not None:
            where.append("m.created_ts <= ?")
            params.append(until_ts)
        having = ""
        if search:
            having = " HAVING LOWER(m.uploader) LIKE ? OR LOWER(MAX(dn.value)) LIKE ?"
            pattern = "%" + search.lower().replace("%", "").replace("_", "") + "%"
            params += [pattern, pattern]
        order = {"user_id": "user_id", "displayname": "displayname", "media_length": "media_length",
                 "media_count": "media_count"}[order_by]
        return await self.db.fetch(
            "SELECT m.uploader AS user_id, MAX(dn.value) AS displayname, COUNT(*) AS media_count, "
            "SUM(m.size) AS media_length FROM media m LEFT JOIN profile_fields dn "
            "ON dn.user_id = m.uploader AND dn.field_name = 'displayname' "
            f"WHERE {' AND '.join(where)} GROUP BY m.uploader{having} "
            f"ORDER BY {order} {'DESC' if descending else 'ASC'}, user_id",
            params,
        )

    async def created_before(self, before_ts: int, size_gt: int) -> list[str]:
        rows = await self.db.fetch(
            "SELECT media_id FROM media WHERE state = 'complete' AND created_ts < ? AND size > ? "
            f"AND uploader LIKE ? ESCAPE {self.esc}",
            [before_ts, size_gt, self.local],
        )
        return [str(r["media_id"]) for r in rows]

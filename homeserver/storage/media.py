"""Media metadata rows and media references (``media``, ``media_refs``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from homeserver.storage.database import Database, Row

PENDING = "pending"
COMPLETE = "complete"


@dataclass(frozen=True)
class MediaRow:
    media_id: str
    uploader: str
    content_type: str
    size: int
    sha256: str | None
    filename: str | None
    state: str
    created_ts: int
    upload_expires_ts: int | None


def _row(row: Row) -> MediaRow:
    return MediaRow(
        media_id=str(row["media_id"]),
        uploader=str(row["uploader"]),
        content_type=str(row["content_type"]),
        size=int(row["size"]),
        sha256=row["sha256"],
        filename=row["filename"],
        state=str(row["state"]),
        created_ts=int(row["created_ts"]),
        upload_expires_ts=None if row["upload_expires_ts"] is None else int(row["upload_expires_ts"]),
    )


_COLUMNS = (
    "media_id, uploader, content_type, size, sha256, filename, state, created_ts, upload_expires_ts"
)


def _in(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


class MediaRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, media_id: str) -> MediaRow | None:
        row = await self.db.fetch_one(f"SELECT {_COLUMNS} FROM media WHERE media_id = ?", [media_id])
        return _row(row) if row else None

    async def create_pending(self, media_id: str, uploader: str, now_ms: int, expires_ts: int) -> None:
        await self.db.execute(
            f"INSERT INTO media ({_COLUMNS}) VALUES (?, ?, ?, 0, NULL, NULL, ?, ?, ?)",
            [media_id, uploader, "application/octet-stream", PENDING, now_ms, expires_ts],
        )

    async def create_complete(
        self, media_id: str, uploader: str, content_type: str, size: int, sha256: str,
        filename: str | None, now_ms: int,
    ) -> None:
        await self.db.execute(
            f"INSERT INTO media ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [media_id, uploader, content_type, size, sha256, filename, COMPLETE, now_ms],
        )

    async def complete_pending(
        self, media_id: str, uploader: str, content_type: str, size: int, sha256: str,
        filename: str | None, now_ms: int,
    ) -> bool:
        """Mark a created media id as uploaded; False if it is no longer pending."""
        count = await self.db.execute(
            "UPDATE media SET content_type = ?, size = ?, sha256 = ?, filename = ?, state = ?, "
            "upload_expires_ts = NULL WHERE media_id = ? AND uploader = ? AND state = ? "
            "AND upload_expires_ts >= ?",
            [content_type, size, sha256, filename, COMPLETE, media_id, uploader, PENDING, now_ms],
        )
        return count == 1

    async def bytes_used(self, uploader: str) -> int:
        """Bytes of complete media uploaded by ``uploader`` (for the per-user quota)."""
        row = await self.db.fetch_one(
            "SELECT COALESCE(SUM(size), 0) AS n FROM media WHERE uploader = ? AND state = ?",
            [uploader, COMPLETE],
        )
        return int(row["n"]) if row else 0

    async def count_pending(self, uploader: str, now_ms: int) -> int:
        row = await self.db.fetch_one(
            "SELECT COUNT(*) AS n FROM media WHERE uploader = ? AND state = ? AND upload_expires_ts >= ?",
            [uploader, PENDING, now_ms],
        )
        return int(row["n"]) if row else 0

    async def expired_pending(self, now_ms: int, limit: int = 500) -> list[str]:
        rows = await self.db.fetch(
            "SELECT media_id FROM media WHERE state = ? AND upload_expires_ts < ? LIMIT "
            + str(int(limit)),
            [PENDING, now_ms],
        )
        return [str(r["media_id"]) for r in rows]

    async def delete_pending(self, media_id: str, now_ms: int) -> bool:
        count = await self.db.execute(
            "DELETE FROM media WHERE media_id = ? AND state = ? AND upload_expires_ts < ?",
            [media_id, PENDING, now_ms],
        )
        return count == 1

    async def delete(self, media_ids: Sequence[str]) -> None:
        if not media_ids:
            return
        async with self.db.transaction() as conn:
            await self.db.execute(
                f"DELETE FROM media_refs WHERE media_id IN ({_in(media_ids)})", list(media_ids), conn
            )
            await self.db.execute(
                f"DELETE FROM media WHERE media_id IN ({_in(media_ids)})", list(media_ids), conn
            )

    # ------------------------------------------------------------ references
    async def add_refs(self, room_id: str, event_id: str, media_ids: Sequence[str], now_ms: int) -> None:
        sql = self.db.insert_ignore_sql("media_refs", ["media_id", "room_id", "event_id", "created_ts"])
        for media_id in media_ids:
            await self.db.execute(sql, [media_id, room_id, event_id, now_ms])

    async def refs_of_event(self, room_id: str, event_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT media_id FROM media_refs WHERE room_id = ? AND event_id = ?", [room_id, event_id]
        )
        return [str(r["media_id"]) for r in rows]

    async def refs_of_room(self, room_id: str) -> list[str]:
        rows = await self.db.fetch("SELECT DISTINCT media_id FROM media_refs WHERE room_id = ?", [room_id])
        return [str(r["media_id"]) for r in rows]

    async def delete_event_refs(self, room_id: str, event_id: str) -> None:
        await self.db.execute(
            "DELETE FROM media_refs WHERE room_id = ? AND event_id = ?", [room_id, event_id]
        )

    async def delete_room_refs(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM media_refs WHERE room_id = ?", [room_id])

    async def still_referenced(self, media_ids: Sequence[str]) -> set[str]:
        if not media_ids:
            return set()
        rows = await self.db.fetch(
            f"SELECT DISTINCT media_id FROM media_refs WHERE media_id IN ({_in(media_ids)})",
            list(media_ids),
        )
        return {str(r["media_id"]) for r in rows}

"""Moderation and registration control: shared-secret nonces, registration tokens,
event reports, blocked rooms, quarantined media and server-notice rooms."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Row


@dataclass(frozen=True)
class RegistrationToken:
    token: str
    uses_allowed: int | None
    pending: int
    completed: int
    expiry_time: int | None

    def is_valid(self, now_ms: int) -> bool:
        if self.expiry_time is not None and self.expiry_time <= now_ms:
            return False
        return self.uses_allowed is None or self.pending + self.completed < self.uses_allowed

    def to_json(self) -> dict[str, Any]:
        return {
            "token": self.token, "uses_allowed": self.uses_allowed, "pending": self.pending,
            "completed": self.completed, "expiry_time": self.expiry_time,
        }


def _token(row: Row) -> RegistrationToken:
    return RegistrationToken(
        str(row["token"]), None if row["uses_allowed"] is None else int(row["uses_allowed"]),
        int(row["pending"]), int(row["completed"]),
        None if row["expiry_time"] is None else int(row["expiry_time"]),
    )


class ModerationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -------------------------------------------------------------- nonces
    async def add_nonce(self, nonce: str, expires_ts: int) -> None:
        await self.db.execute("INSERT INTO admin_nonces (nonce, expires_ts) VALUES (?, ?)", [nonce, expires_ts])

    async def take_nonce(self, nonce: str, now_ms: int) -> bool:
        """Consume a nonce; true if it existed and had not expired (single use)."""
        deleted = await self.db.execute(
            "DELETE FROM admin_nonces WHERE nonce = ? AND expires_ts > ?", [nonce, now_ms]
        )
        return deleted == 1

    async def expire_nonces(self, now_ms: int) -> None:
        await self.db.execute("DELETE FROM admin_nonces WHERE expires_ts <= ?", [now_ms])

    # ------------------------------------------------- registration tokens
    _TOKEN_COLS = "token, uses_allowed, pending, completed, expiry_time"

    async def tokens(self) -> list[RegistrationToken]:
        rows = await self.db.fetch(f"SELECT {self._TOKEN_COLS} FROM registration_tokens ORDER BY token")
        return [_token(r) for r in rows]

    async def token(self, token: str) -> RegistrationToken | None:
        row = await self.db.fetch_one(
            f"SELECT {self._TOKEN_COLS} FROM registration_tokens WHERE token = ?", [token]
        )
        return _token(row) if row else None

    async def create_token(self, token: str, uses_allowed: int | None, expiry_time: int | None) -> bool:
        rows = await self.db.execute(
            self.db.insert_ignore_sql("registration_tokens", ["token", "uses_allowed", "expiry_time"]),
            [token, uses_allowed, expiry_time],
        )
        return rows == 1

    async def update_token(self, token: str, changes: dict[str, int | None]) -> None:
        if not changes:
            return
        assigns = ", ".join(f"{name} = ?" for name in changes)
        await self.db.execute(
            f"UPDATE registration_tokens SET {assigns} WHERE token = ?", [*changes.values(), token]
        )

    async def delete_token(self, token: str) -> bool:
        return await self.db.execute("DELETE FROM registration_tokens WHERE token = ?", [token]) == 1

    async def use_token(self, token: str, now_ms: int) -> bool:
        """Count one completed registration against a valid token, atomically."""
        updated = await self.db.execute(
            "UPDATE registration_tokens SET completed = completed + 1 WHERE token = ? "
            "AND (expiry_time IS NULL OR expiry_time > ?) "
            "AND (uses_allowed IS NULL OR pending + completed < uses_allowed)",
            [token, now_ms],
        )
        return updated == 1

    # -------------------------------------------------------- event reports
    async def add_report(self, room_id: str, event_id: str | None, user_id: str, reason: str | None,
                         score: int | None, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO event_reports (received_ts, room_id, event_id, user_id, reason, score) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            [now_ms, room_id, event_id, user_id, reason, score],
        )

    async def reports(self, offset: int, limit: int, descending: bool, user_id: str | None,
                      room_id: str | None) -> tuple[list[Row], int]:
        where, params = [], []
        if user_id:
            where.append("user_id = ?")
            params.append(user_id)
        if room_id:
            where.append("room_id = ?")
            params.append(room_id)
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        count = await self.db.fetch_one(f"SELECT COUNT(*) AS n FROM event_reports{clause}", params)
        rows = await self.db.fetch(
            "SELECT id, received_ts, room_id, event_id, user_id, reason, score FROM event_reports"
            f"{clause} ORDER BY received_ts {'DESC' if descending else 'ASC'}, id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return rows, int(count["n"]) if count else 0

    async def report(self, report_id: int) -> Row | None:
        return await self.db.fetch_one(
            "SELECT id, received_ts, room_id, event_id, user_id, reason, score FROM event_reports "
            "WHERE id = ?", [report_id],
        )

    async def delete_report(self, report_id: int) -> bool:
        return await self.db.execute("DELETE FROM event_reports WHERE id = ?", [report_id]) == 1

    # -------------------------------------------------------- blocked rooms
    async def block_room(self, room_id: str, user_id: str, now_ms: int) -> None:
        await self.db.execute(
            self.db.insert_ignore_sql("blocked_rooms", ["room_id", "user_id", "ts"]), [room_id, user_id, now_ms]
        )

    async def unblock_room(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM blocked_rooms WHERE room_id = ?", [room_id])

    async def room_blocker(self, room_id: str) -> str | None:
        row = await self.db.fetch_one("SELECT user_id FROM blocked_rooms WHERE room_id = ?", [room_id])
        return str(row["user_id"]) if row else None

    # ------------------------------------------------------ media quarantine
    async def quarantine(self, media_ids: list[str], by: str, now_ms: int) -> None:
        sql = self.db.insert_ignore_sql("media_quarantine", ["media_id", "quarantined_by", "ts"])
        for media_id in media_ids:
            await self.db.execute(sql, [media_id, by, now_ms])

    async def unquarantine(self, media_id: str) -> None:
        await self.db.execute("DELETE FROM media_quarantine WHERE media_id = ?", [media_id])

    async def quarantined_by(self, media_ids: list[str]) -> dict[str, str]:
        if not media_ids:
            return {}
        marks = ", ".join("?" for _ in media_ids)
        rows = await self.db.fetch(
            f"SELECT media_id, quarantined_by FROM media_quarantine WHERE media_id IN ({marks})", media_ids
        )
        return {str(r["media_id"]): str(r["quarantined_by"]) for r in rows}

    # ------------------------------------------------------- room deletions
    async def record_deletion(self, delete_id: str, room_id: str, status: str, result: dict[str, Any],
                              now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO room_deletions (delete_id, room_id, status, result, ts) VALUES (?, ?, ?, ?, ?)",
            [delete_id, room_id, status, json.dumps(result), now_ms],
        )

    async def deletions(self, room_id: str | None = None, delete_id: str | None = None) -> list[Row]:
        column, value = ("room_id", room_id) if room_id is not None else ("delete_id", delete_id)
        rows = await self.db.fetch(
            f"SELECT delete_id, room_id, status, result FROM room_deletions WHERE {column} = ? ORDER BY ts",
            [value],
        )
        return [{**r, "result": json.loads(r["result"])} for r in rows]

    async def record_purge(self, purge_id: str, room_id: str, status: str, deleted: int, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO history_purges (purge_id, room_id, status, deleted, ts) VALUES (?, ?, ?, ?, ?)",
            [purge_id, room_id, status, deleted, now_ms],
        )

    async def purge(self, purge_id: str) -> Row | None:
        return await self.db.fetch_one(
            "SELECT purge_id, room_id, status, deleted FROM history_purges WHERE purge_id = ?", [purge_id]
        )

    # --------------------------------------------------- server notice rooms
    async def notice_room(self, user_id: str) -> str | None:
        row = await self.db.fetch_one("SELECT room_id FROM server_notice_rooms WHERE user_id = ?", [user_id])
        return str(row["room_id"]) if row else None

    async def set_notice_room(self, user_id: str, room_id: str) -> None:
        await self.db.execute(
            self.db.upsert_sql("server_notice_rooms", ["user_id"], ["user_id", "room_id"]), [user_id, room_id]
        )

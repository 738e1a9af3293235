"""Room history retention: rooms' ``m.room.retention`` policies and deleting expired messages."""

from __future__ import annotations

import json
from typing import Any

from homeserver.storage.database import Database


def _marks(n: int) -> str:
    return ", ".join("?" for _ in range(n))


class RetentionRepository:
    """Only rooms created by this server's users (``server_name``) are considered."""

    def __init__(self, db: Database, server_name: str) -> None:
        self.db = db
        self.local = "%:" + server_name.replace("%", "").replace("_", "\\_")
        self.esc = "'\\\\'" if db.dialect == "mysql" else "'\\'"

    async def policies(self) -> dict[str, dict[str, Any]]:
        """The current ``m.room.retention`` content of every room that has one."""
        rows = await self.db.fetch(
            "SELECT rs.room_id, e.pdu FROM room_state rs JOIN events e ON e.event_id = rs.event_id "
            "JOIN rooms r ON r.room_id = rs.room_id "
            f"WHERE rs.type = 'm.room.retention' AND rs.state_key = '' AND r.creator LIKE ? ESCAPE {self.esc}",
            [self.local],
        )
        out: dict[str, dict[str, Any]] = {}
        for row in rows:
            content = json.loads(row["pdu"]).get("content")
            out[str(row["room_id"])] = content if isinstance(content, dict) else {}
        return out

    async def live_rooms(self) -> list[str]:
        rows = await self.db.fetch(
            f"SELECT room_id FROM rooms WHERE purged = 0 AND creator LIKE ? ESCAPE {self.esc}", [self.local]
        )
        return [str(r["room_id"]) for r in rows]

    async def expired_messages(self, room_id: str, cutoff_ts: int | None, before_pos: int | None = None,
                               keep_local: bool = False, limit: int = 500) -> list[str]:
        """Non-state events older than ``cutoff_ts`` (or before stream position ``before_pos``),
        never the room's latest event."""
        sql = (
            "SELECT e.event_id FROM events e JOIN rooms r ON r.room_id = e.room_id "
            "WHERE e.room_id = ? AND e.state_key IS NULL "
            "AND (r.last_event_id IS NULL OR e.event_id <> r.last_event_id)"
        )
        params: list[Any] = [room_id]
        if cutoff_ts is not None:
            sql += " AND e.origin_server_ts < ?"
            params.append(cutoff_ts)
        if before_pos is not None:
            sql += " AND e.stream_pos < ?"
            params.append(before_pos)
        if keep_local:
            sql += f" AND e.sender NOT LIKE ? ESCAPE {self.esc}"
            params.append(self.local)
        rows = await self.db.fetch(sql + " ORDER BY e.stream_pos LIMIT ?", [*params, limit])
        return [str(r["event_id"]) for r in rows]

    async def delete_events(self, room_id: str, event_ids: list[str]) -> None:
        if not event_ids:
            return
        async with self.db.transaction() as conn:
            marks = _marks(len(event_ids))
            await self.db.execute(f"DELETE FROM events WHERE room_id = ? AND event_id IN ({marks})",
                                  [room_id, *event_ids], conn=conn)
            await self.db.execute(f"DELETE FROM event_txns WHERE event_id IN ({marks})", event_ids, conn=conn)

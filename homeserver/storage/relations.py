"""Event relations (``m.relates_to``) for /relations and /threads, and events by time.

Rows are written with their event (``relation_rows.record_relation``, in the
room's write transaction); reads join ``events`` and skip redacted events."""

from __future__ import annotations

from typing import Any

from homeserver.storage.database import Database
from homeserver.storage.events import EVENT_COLUMNS, StoredEvent, event_from_row


def _e(columns: str) -> str:
    return ", ".join(f"e.{c.strip()}" for c in columns.split(","))


class RelationRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def children(
        self, room_id: str, parents: list[str], rel_type: str | None, event_type: str | None,
        low: int, high: int, direction: str, limit: int,
    ) -> list[StoredEvent]:
        """Events relating to any of ``parents`` with positions in (low, high]."""
        if not parents:
            return []
        sql = (
            f"SELECT {_e(EVENT_COLUMNS)} FROM event_relations r JOIN events e ON e.event_id = r.event_id "
            f"WHERE r.room_id = ? AND r.relates_to IN ({', '.join('?' for _ in parents)}) "
            "AND e.redacted_by IS NULL AND r.stream_pos > ? AND r.stream_pos <= ?"
        )
        params: list[Any] = [room_id, *parents, low, high]
        if rel_type is not None:
            sql += " AND r.rel_type = ?"
            params.append(rel_type)
        if event_type is not None:
            sql += " AND r.type = ?"
            params.append(event_type)
        sql += f" ORDER BY r.stream_pos {'DESC' if direction == 'b' else 'ASC'} LIMIT ?"
        params.append(limit)
        return [event_from_row(r) for r in await self.db.fetch(sql, params)]

    async def thread_roots(
        self, room_id: str, low: int, high: int, before: int, limit: int, participant: str | None,
    ) -> list[tuple[str, int, int]]:
        """(root id, latest reply position, reply count) of threads, latest activity first.

        Replies in (low, high] count; only threads whose latest reply is below ``before``;
        with ``participant``, threads they started or replied to."""
        sql = (
            "SELECT r.relates_to AS root, MAX(r.stream_pos) AS latest, COUNT(*) AS n "
            "FROM event_relations r JOIN events e ON e.event_id = r.event_id "
            "WHERE r.room_id = ? AND r.rel_type = 'm.thread' AND e.redacted_by IS NULL "
            "AND r.stream_pos > ? AND r.stream_pos <= ?"
        )
        params: list[Any] = [room_id, low, high]
        if participant is not None:
            sql += (
                " AND r.relates_to IN (SELECT p.relates_to FROM event_relations p WHERE p.room_id = ? "
                "AND p.rel_type = 'm.thread' AND p.sender = ? UNION SELECT t.event_id FROM events t "
                "WHERE t.room_id = ? AND t.sender = ?)"
            )
            params += [room_id, participant, room_id, participant]
        sql += " GROUP BY r.relates_to HAVING MAX(r.stream_pos) < ? ORDER BY latest DESC LIMIT ?"
        params += [before, limit]
        rows = await self.db.fetch(sql, params)
        return [(str(r["root"]), int(r["latest"]), int(r["n"])) for r in rows]

    async def participated(self, room_id: str, roots: list[str], user_id: str) -> set[str]:
        if not roots:
            return set()
        marks = ", ".join("?" for _ in roots)
        rows = await self.db.fetch(
            f"SELECT DISTINCT relates_to FROM event_relations WHERE room_id = ? AND rel_type = 'm.thread' "
            f"AND sender = ? AND relates_to IN ({marks})",
            [room_id, user_id, *roots],
        )
        return {str(r["relates_to"]) for r in rows}

    async def closest_by_ts(self, room_id: str, ts: int, direction: str, low: int, high: int) -> StoredEvent | None:
        """The first event at or after (``f``) / at or before (``b``) ``ts`` in (low, high]."""
        op, order = (">=", "ASC") if direction == "f" else ("<=", "DESC")
        row = await self.db.fetch_one(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE room_id = ? AND origin_server_ts {op} ? "
            f"AND stream_pos > ? AND stream_pos <= ? ORDER BY origin_server_ts {order}, stream_pos {order} LIMIT 1",
            (room_id, ts, low, high),
        )
        return event_from_row(row) if row else None

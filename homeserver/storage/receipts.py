"""Read receipts on the "receipts" stream.

One row per (room, receipt type, user, thread): the latest receipt.  A
receipt only moves forward: one for an event at or before the current one
(by its position in the "events" stream) is ignored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from homeserver.storage.database import Database, Row
from homeserver.storage.streams import StreamRepository

STREAM = "receipts"

_CHUNK = 500
_COLUMNS = "room_id, receipt_type, user_id, thread_id, event_id, event_pos, ts, stream_pos"


@dataclass(frozen=True)
class ReceiptRow:
    room_id: str
    receipt_type: str
    user_id: str
    thread_id: str  # "" when unthreaded
    event_id: str
    event_pos: int
    ts: int
    stream_pos: int


def _row(row: Row) -> ReceiptRow:
    return ReceiptRow(
        str(row["room_id"]), str(row["receipt_type"]), str(row["user_id"]), str(row["thread_id"]),
        str(row["event_id"]), int(row["event_pos"]), int(row["ts"]), int(row["stream_pos"]),
    )


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


class ReceiptRepository:
    def __init__(self, db: Database, streams: StreamRepository) -> None:
        self.db = db
        self.streams = streams

    async def _current_event_pos(
        self, room_id: str, receipt_type: str, user_id: str, thread_id: str,
        conn: BaseDBAsyncClient | None = None,
    ) -> int | None:
        row = await self.db.fetch_one(
            "SELECT event_pos FROM receipts WHERE room_id = ? AND receipt_type = ? "
            "AND user_id = ? AND thread_id = ?",
            (room_id, receipt_type, user_id, thread_id),
            conn=conn,
        )
        return int(row["event_pos"]) if row else None

    async def put(
        self, room_id: str, receipt_type: str, user_id: str, thread_id: str,
        event_id: str, event_pos: int, ts: int,
    ) -> int | None:
        """Move the receipt forward to ``event_id``; return the new stream position,
        or None when the receipt already points at or after that event."""
        current = await self._current_event_pos(room_id, receipt_type, user_id, thread_id)
        if current is not None and current >= event_pos:
            return None
        async with self.db.transaction() as conn:
            position = await self.streams.advance(conn, STREAM)
            # Re-checked under the stream lock (a concurrent receipt may have moved it).
            current = await self._current_event_pos(
                room_id, receipt_type, user_id, thread_id, conn
            )
            if current is not None and current >= event_pos:
                return None
            await self.db.execute(
                self.db.upsert_sql(
                    "receipts",
                    ["room_id", "receipt_type", "user_id", "thread_id"],
                    ["room_id", "receipt_type", "user_id", "thread_id", "event_id", "event_pos",
                     "ts", "stream_pos"],
                ),
                (room_id, receipt_type, user_id, thread_id, event_id, event_pos, ts, position),
                conn=conn,
            )
        return position

    async def delete_room(self, room_id: str) -> None:
        """Forget a purged room's receipts."""
        await self.db.execute("DELETE FROM receipts WHERE room_id = ?", (room_id,))

    async def for_rooms(self, room_ids: Sequence[str]) -> list[ReceiptRow]:
        """Every current receipt in the rooms."""
        out: list[ReceiptRow] = []
        for start in range(0, len(room_ids), _CHUNK):
            chunk = list(room_ids[start:start + _CHUNK])
            rows = await self.db.fetch(
                f"SELECT {_COLUMNS} FROM receipts WHERE room_id IN ({_marks(chunk)}) "
                "ORDER BY stream_pos",
                chunk,
            )
            out.extend(_row(r) for r in rows)
        return out

    async def changed(self, room_ids: Sequence[str], since: int, upto: int) -> list[ReceiptRow]:
        """Receipts in the rooms written at a position in ``(since, upto]``."""
        out: list[ReceiptRow] = []
        if since >= upto:
            return out
        for start in range(0, len(room_ids), _CHUNK):
            chunk = list(room_ids[start:start + _CHUNK])
            rows = await self.db.fetch(
                f"SELECT {_COLUMNS} FROM receipts WHERE room_id IN ({_marks(chunk)}) "
                "AND stream_pos > ? AND stream_pos <= ? ORDER BY stream_pos",
                (*chunk, since, upto),
            )
            out.extend(_row(r) for r in rows)
        return out

    async def read_up_to(self, user_id: str, room_ids: Sequence[str]) -> dict[str, int]:
        """Per room, the events-stream position of the user's latest read receipt
        (public or private, any thread)."""
        out: dict[str, int] = {}
        for start in range(0, len(room_ids), _CHUNK):
            chunk = list(room_ids[start:start + _CHUNK])
            rows = await self.db.fetch(
                "SELECT room_id, MAX(event_pos) AS pos FROM receipts WHERE user_id = ? "
                f"AND room_id IN ({_marks(chunk)}) GROUP BY room_id",
                (user_id, *chunk),
            )
            out.update({str(r["room_id"]): int(r["pos"]) for r in rows})
        return out

    # ----------------------------------------------------- the events table
    async def event_position(self, room_id: str, event_id: str) -> int | None:
        """The event's position in the "events" stream, if it is an event of ``room_id``."""
        row = await self.db.fetch_one(
            "SELECT stream_pos FROM events WHERE event_id = ? AND room_id = ?", (event_id, room_id)
        )
        return int(row["stream_pos"]) if row else None

    async def unread_bounds(self, user_id: str, room_ids: Sequence[str]) -> dict[str, int]:
        """Per joined room, the position after which events are unread: the user's
        latest read receipt or, without one, their join (as in :meth:`read_up_to`)."""
        bounds: dict[str, int] = {}
        for start in range(0, len(room_ids), 200):
            chunk = list(room_ids[start:start + 200])
            rows = await self.db.fetch(
                "SELECT m.room_id, COALESCE(m.joined_since, m.stream_pos) AS since, "
                "(SELECT MAX(r.event_pos) FROM receipts r WHERE r.user_id = m.user_id "
                "AND r.room_id = m.room_id) AS rpos FROM room_memberships m "
                f"WHERE m.user_id = ? AND m.membership = 'join' AND m.room_id IN ({_marks(chunk)})",
                (user_id, *chunk),
            )
            bounds.update({str(r["room_id"]): max(int(r["since"]), int(r["rpos"] or 0)) for r in rows})
        return bounds

    async def unread_bounds_and_counts(self, user_id: str, room_ids: Sequence[str], upto: int
                                       ) -> tuple[dict[str, int], dict[str, int]]:
        """:meth:`unread_bounds` and :meth:`unread_counts` together, in one statement per
        200 rooms (a /sync asks for both, and each round trip costs it more than the rows)."""
        bounds: dict[str, int] = {}
        counts: dict[str, int] = {r: 0 for r in room_ids}
        low = "(CASE WHEN COALESCE(b.rpos, 0) > b.since THEN b.rpos ELSE b.since END)"
        for start in range(0, len(room_ids), 200):
            chunk = list(room_ids[start:start + 200])
            rows = await self.db.fetch(
                f"SELECT b.room_id, {low} AS low, (SELECT COUNT(*) FROM events e WHERE e.room_id = b.room_id "
                f"AND e.stream_pos > {low} AND e.stream_pos <= ? AND e.sender <> ? "
                "AND e.state_key IS NULL AND e.redacted_by IS NULL "
                "AND e.type NOT IN ('m.room.redaction', 'm.reaction')) AS n "
                "FROM (SELECT m.room_id, COALESCE(m.joined_since, m.stream_pos) AS since, "
                "(SELECT MAX(r.event_pos) FROM receipts r WHERE r.user_id = m.user_id "
                "AND r.room_id = m.room_id) AS rpos FROM room_memberships m "
                f"WHERE m.user_id = ? AND m.membership = 'join' AND m.room_id IN ({_marks(chunk)})) b",
                (upto, user_id, user_id, *chunk),
            )
            for row in rows:
                bounds[str(row["room_id"])] = int(row["low"])
                counts[str(row["room_id"])] = int(row["n"])
        return bounds, counts

    async def unread_events(
        self, user_id: str, room_ids: Sequence[str], upto: int, limit: int,
        bounds: dict[str, int] | None = None,
    ) -> dict[str, list[tuple[str, str, str | bytes]]]:
        """Per joined room, the newest ``limit`` events :meth:`unread_counts` counts,
        newest first, as (event id, sender, PDU as stored) for push-rule evaluation.
        ``bounds``: :meth:`unread_bounds` of these rooms, if read already."""
        if bounds is None:
            bounds = await self.unread_bounds(user_id, room_ids)
        wanted = [(r, bounds[r]) for r in room_ids if r in bounds and bounds[r] < upto]
        out: dict[str, list[tuple[str, str, str | bytes]]] = {r: [] for r, _ in wanted}
        # One statement per 100 rooms: each room's newest events on the (room_id, stream_pos)
        # index, newest first.
        for start in range(0, len(wanted), 100):
            parts = []
            params: list[object] = []
            for room_id, low in wanted[start:start + 100]:
                parts.append(
                    "SELECT * FROM (SELECT room_id, stream_pos, event_id, sender, pdu FROM events "
                    "WHERE room_id = ? AND stream_pos > ? AND stream_pos <= ? AND sender <> ? "
                    "AND state_key IS NULL AND redacted_by IS NULL "
                    "AND type NOT IN ('m.room.redaction', 'm.reaction') ORDER BY stream_pos DESC LIMIT ?) AS u"
                )
                params += [room_id, low, upto, user_id, limit]
            rows = await self.db.fetch(" UNION ALL ".join(parts), params)
            for row in sorted(rows, key=lambda r: -int(r["stream_pos"])):
                out[str(row["room_id"])].append((str(row["event_id"]), str(row["sender"]), row["pdu"]))
        return out

    async def unread_counts(self, user_id: str, room_ids: Sequence[str], upto: int,
                            bounds: dict[str, int] | None = None) -> dict[str, int]:
        """Per joined room: events from other users after the user's latest read
        receipt (or, without one, after they joined), up to ``upto`` in the
        events stream.  State events, redactions, reactions and redacted
        events do not count.

        One small lookup gives each room's lower bound (the join and, as in
        :meth:`read_up_to`, the latest receipt); then one range count per room
        on the ``(room_id, stream_pos)`` index, so the cost follows the number
        of unread events, not the size of the rooms.  ``bounds``: those lower
        bounds (:meth:`unread_bounds`), if read already.
        """
        counts: dict[str, int] = {r: 0 for r in room_ids}
        if bounds is None:
            bounds = await self.unread_bounds(user_id, room_ids)
        for start in range(0, len(room_ids), 200):
            chunk = room_ids[start:start + 200]
            wanted = [(r, bounds[r]) for r in chunk if r in bounds and bounds[r] < upto]
            if not wanted:
                continue
            parts = []
            params: list[object] = []
            for room_id, low in wanted:
                parts.append(
                    "SELECT ? AS room_id, COUNT(*) AS n FROM events WHERE room_id = ? "
                    "AND stream_pos > ? AND stream_pos <= ? AND sender <> ? AND state_key IS NULL "
                    "AND redacted_by IS NULL AND type NOT IN ('m.room.redaction', 'm.reaction')"
                )
                params += [room_id, room_id, low, upto, user_id]
            for row in await self.db.fetch(" UNION ALL ".join(parts), params):
                counts[str(row["room_id"])] = int(row["n"])
        return counts

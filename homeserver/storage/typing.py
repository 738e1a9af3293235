"""Typing notifications on the "typing" stream, kept in the database.

A row per (room, user): ``active`` with an expiry while the user types.
Stopping, or expiring, clears ``active`` under a new stream position, so an
incremental /sync sees that the room's typing list changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from homeserver.storage.database import Database
from homeserver.storage.streams import StreamRepository

STREAM = "typing"

_CHUNK = 500


@dataclass(frozen=True)
class TypingChange:
    room_id: str
    user_id: str
    stream_pos: int


def _marks(values: Sequence[object]) -> str:
    return ", ".join("?" for _ in values)


class TypingRepository:
    def __init__(self, db: Database, streams: StreamRepository) -> None:
        self.db = db
        self.streams = streams

    async def start(self, room_id: str, user_id: str, expires_ts: int, now_ms: int) -> int | None:
        """Mark the user as typing until ``expires_ts``; return the new stream
        position, or None if they were already shown typing (only the expiry moves)."""
        extended = await self.db.execute(
            "UPDATE typing SET expires_ts = ? WHERE room_id = ? AND user_id = ? "
            "AND active = 1 AND expires_ts > ?",
            (expires_ts, room_id, user_id, now_ms),
        )
        if extended:
            return None
        async with self.db.transaction() as conn:
            position = await self.streams.advance(conn, STREAM)
            await self.db.execute(
                self.db.upsert_sql(
                    "typing",
                    ["room_id", "user_id"],
                    ["room_id", "user_id", "active", "expires_ts", "stream_pos"],
                ),
                (room_id, user_id, 1, expires_ts, position),
                conn=conn,
            )
        return position

    async def stop(self, room_id: str, user_id: str) -> int | None:
        """Clear the user's typing flag; return the new position, or None if not typing."""
        row = await self.db.fetch_one(
            "SELECT active FROM typing WHERE room_id = ? AND user_id = ?", (room_id, user_id)
        )
        if row is None or not row["active"]:
            return None
        async with self.db.transaction() as conn:
            position = await self.streams.advance(conn, STREAM)
            changed = await self.db.execute(
                "UPDATE typing SET active = 0, stream_pos = ? "
                "WHERE room_id = ? AND user_id = ? AND active = 1",
                (position, room_id, user_id),
                conn=conn,
            )
        return position if changed else None

    async def current(self, room_ids: Sequence[str], now_ms: int) -> dict[str, list[str]]:
        """The users typing now in each room (rooms without typers are absent)."""
        out: dict[str, list[str]] = {}
        for start in range(0, len(room_ids), _CHUNK):
            chunk = list(room_ids[start:start + _CHUNK])
            rows = await self.db.fetch(
                f"SELECT room_id, user_id FROM typing WHERE room_id IN ({_marks(chunk)}) "
                "AND active = 1 AND expires_ts > ? ORDER BY room_id, user_id",
                (*chunk, now_ms),
            )
            for row in rows:
                out.setdefault(str(row["room_id"]), []).append(str(row["user_id"]))
        return out

    async def changed_rooms(self, room_ids: Sequence[str], since: int, upto: int) -> set[str]:
        """Rooms whose typing list changed at a position in ``(since, upto]``."""
        out: set[str] = set()
        if since >= upto:
            return out
        for start in range(0, len(room_ids), _CHUNK):
            chunk = list(room_ids[start:start + _CHUNK])
            rows = await self.db.fetch(
                f"SELECT DISTINCT room_id FROM typing WHERE room_id IN ({_marks(chunk)}) "
                "AND stream_pos > ? AND stream_pos <= ?",
                (*chunk, since, upto),
            )
            out.update(str(r["room_id"]) for r in rows)
        return out

    async def expire(self, now_ms: int) -> list[TypingChange]:
        """Clear every typing flag whose expiry has passed; return what changed."""
        due = await self.db.fetch(
            "SELECT room_id, user_id FROM typing WHERE active = 1 AND expires_ts <= ?", (now_ms,)
        )
        if not due:
            return []
        changes: list[TypingChange] = []
        async with self.db.transaction() as conn:
            position = await self.streams.advance(conn, STREAM)
            for row in due:
                room_id, user_id = str(row["room_id"]), str(row["user_id"])
                # Re-checked: the user may have refreshed their typing meanwhile.
                changed = await self.db.execute(
                    "UPDATE typing SET active = 0, stream_pos = ? WHERE room_id = ? "
                    "AND user_id = ? AND active = 1 AND expires_ts <= ?",
                    (position, room_id, user_id, now_ms),
                    conn=conn,
                )
                if changed:
                    changes.append(TypingChange(room_id, user_id, position))
        return changes

    async def next_expiry(self) -> int | None:
        row = await self.db.fetch_one(
            "SELECT MIN(expires_ts) AS next_ts FROM typing WHERE active = 1"
        )
        return int(row["next_ts"]) if row and row["next_ts"] is not None else None

    async def prune(self, expired_before_ms: int) -> int:
        """Forget stopped rows whose typing ended before the cutoff (they are kept
        a while so that incremental syncs still see the stop)."""
        return await self.db.execute(
            "DELETE FROM typing WHERE active = 0 AND expires_ts < ?", (expired_before_ms,)
        )

    async def delete_room(self, room_id: str) -> None:
        """Forget a purged room's typing rows."""
        await self.db.execute("DELETE FROM typing WHERE room_id = ?", (room_id,))

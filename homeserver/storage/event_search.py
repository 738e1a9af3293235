"""Reading candidate events for server-side search (``POST /search``).

Only unencrypted, unredacted events of the searchable types are read, newest
first; the caller decides what matches (the SQL ``LIKE`` here is a coarse
pre-filter on the event JSON, never the final word)."""

from __future__ import annotations

from collections.abc import Sequence

from homeserver.storage.database import Database
from homeserver.storage.events import EVENT_COLUMNS, StoredEvent, event_from_row

ROOMS_PER_QUERY = 200


def like_pattern(word: str) -> str:
    """``%word%`` with ``!`` as the escape character (the same on SQLite and MariaDB)."""
    escaped = word.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return f"%{escaped}%"


class EventSearchRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def candidates(
        self, room_ids: Sequence[str], types: Sequence[str], before_pos: int, limit: int,
        needle: str | None,
    ) -> list[StoredEvent]:
        """Up to ``limit`` events below ``before_pos`` in the rooms, newest first.

        ``needle`` (lower-case ASCII) must occur in the lower-cased event JSON."""
        out: list[StoredEvent] = []
        type_marks = ", ".join("?" for _ in types)
        for start in range(0, len(room_ids), ROOMS_PER_QUERY):
            chunk = list(room_ids[start:start + ROOMS_PER_QUERY])
            sql = (
                f"SELECT {EVENT_COLUMNS} FROM events WHERE room_id IN ({', '.join('?' for _ in chunk)})"
                f" AND type IN ({type_marks}) AND redacted_by IS NULL AND stream_pos < ?"
            )
            params: list[object] = [*chunk, *types, before_pos]
            if needle:
                sql += " AND LOWER(pdu) LIKE ? ESCAPE '!'"
                params.append(like_pattern(needle))
            sql += " ORDER BY stream_pos DESC LIMIT ?"
            params.append(limit)
            out += [event_from_row(r) for r in await self.db.fetch(sql, params)]
        out.sort(key=lambda e: e.stream_pos, reverse=True)
        return out[:limit]

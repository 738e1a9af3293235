"""Account data (global and per room, incl. ``m.tag``) on the "account_data" stream."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Row
from homeserver.storage.streams import StreamRepository

STREAM = "account_data"
GLOBAL = ""  # the room_id of global account data

Content = dict[str, Any]


@dataclass(frozen=True)
class AccountDataRow:
    room_id: str  # "" for global account data
    data_type: str
    content: Content
    stream_pos: int


def _row(row: Row) -> AccountDataRow:
    return AccountDataRow(
        str(row["room_id"]), str(row["data_type"]), json.loads(row["content"]), int(row["stream_pos"])
    )


_COLUMNS = "room_id, data_type, content, stream_pos"


class AccountDataRepository:
    def __init__(self, db: Database, streams: StreamRepository) -> None:
        self.db = db
        self.streams = streams

    async def get(self, user_id: str, room_id: str, data_type: str) -> Content | None:
        row = await self.db.fetch_one(
            "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND data_type = ?",
            (user_id, room_id, data_type),
        )
        if row is None:
            return None
        content: Content = json.loads(row["content"])
        return content

    async def put(self, user_id: str, room_id: str, data_type: str, content: Content) -> int:
        """Store ``content``; return its position in the account-data stream."""
        position = await self.update(user_id, room_id, data_type, lambda _old: content)
        assert position is not None
        return position

    async def update(
        self,
        user_id: str,
        room_id: str,
        data_type: str,
        change: Callable[[Content | None], Content | None],
    ) -> int | None:
        """Read-modify-write one entry; ``change`` returns the new content, or None
        to leave it untouched.  Return the new stream position, or None if unchanged.

        The stream position is allocated first: its row lock serialises every
        account-data writer until commit, so concurrent edits (two tags set at
        once) never lose each other's change.
        """
        async with self.db.transaction() as conn:
            position = await self.streams.advance(conn, STREAM)
            row = await self.db.fetch_one(
                "SELECT content FROM account_data WHERE user_id = ? AND room_id = ? AND data_type = ?",
                (user_id, room_id, data_type),
                conn=conn,
            )
            new = change(json.loads(row["content"]) if row else None)
            if new is None:
                # Nothing to write: the position stays unused (a harmless gap).
                return None
            await self.db.execute(
                self.db.upsert_sql(
                    "account_data",
                    ["user_id", "room_id", "data_type"],
                    ["user_id", "room_id", "data_type", "content", "stream_pos"],
                ),
                (user_id, room_id, data_type, json.dumps(new, ensure_ascii=False), position),
                conn=conn,
            )
            return position

    async def all_for_user(self, user_id: str) -> list[AccountDataRow]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM account_data WHERE user_id = ? ORDER BY stream_pos",
            (user_id,),
        )
        return [_row(r) for r in rows]

    async def for_rooms(self, user_id: str, room_ids: list[str]) -> list[AccountDataRow]:
        if not room_ids:
            return []
        marks = ", ".join("?" for _ in room_ids)
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM account_data WHERE user_id = ? AND room_id IN ({marks}) "
            "ORDER BY stream_pos",
            (user_id, *room_ids),
        )
        return [_row(r) for r in rows]

    async def changed(self, user_id: str, since: int, upto: int) -> list[AccountDataRow]:
        rows = await self.db.fetch(
            f"SELECT {_COLUMNS} FROM account_data "
            "WHERE user_id = ? AND stream_pos > ? AND stream_pos <= ? ORDER BY stream_pos",
            (user_id, since, upto),
        )
        return [_row(r) for r in rows]

    async def delete_room(self, room_id: str) -> None:
        """Forget every user's account data (tags, read marker) of a purged room."""
        await self.db.execute("DELETE FROM account_data WHERE room_id = ?", (room_id,))

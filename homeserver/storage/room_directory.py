"""Room aliases and the set of rooms published in the public room directory."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from homeserver.storage.database import Database


@dataclass(frozen=True)
class AliasRow:
    room_alias: str
    room_id: str
    creator: str


class RoomDirectoryRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ----------------------------------------------------------------- aliases
    async def add_alias(self, room_alias: str, room_id: str, creator: str, now_ms: int) -> bool:
        """Create the alias; False if it exists already (for any room)."""
        inserted = await self.db.execute(
            self.db.insert_ignore_sql("room_aliases", ["room_alias", "room_id", "creator", "created_ts"]),
            (room_alias, room_id, creator, now_ms),
        )
        return inserted > 0

    async def alias(self, room_alias: str) -> AliasRow | None:
        row = await self.db.fetch_one(
            "SELECT room_alias, room_id, creator FROM room_aliases WHERE room_alias = ?", (room_alias,)
        )
        if row is None:
            return None
        return AliasRow(str(row["room_alias"]), str(row["room_id"]), str(row["creator"]))

    async def aliases_of(self, room_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT room_alias FROM room_aliases WHERE room_id = ? ORDER BY created_ts, room_alias", (room_id,)
        )
        return [str(r["room_alias"]) for r in rows]

    async def delete_alias(self, room_alias: str) -> bool:
        return await self.db.execute("DELETE FROM room_aliases WHERE room_alias = ?", (room_alias,)) > 0

    async def delete_room(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM room_aliases WHERE room_id = ?", (room_id,))
        await self.db.execute("DELETE FROM room_directory WHERE room_id = ?", (room_id,))

    # --------------------------------------------------------------- directory
    async def publish(self, room_id: str, server_name: str, now_ms: int) -> None:
        await self.db.execute(
            self.db.insert_ignore_sql("room_directory", ["room_id", "server_name", "published_ts"]),
            (room_id, server_name, now_ms),
        )

    async def unpublish(self, room_id: str) -> None:
        await self.db.execute("DELETE FROM room_directory WHERE room_id = ?", (room_id,))

    async def is_published(self, room_id: str) -> bool:
        row = await self.db.fetch_one("SELECT room_id FROM room_directory WHERE room_id = ?", (room_id,))
        return row is not None

    async def published(self, server_name: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT room_id FROM room_directory WHERE server_name = ? ORDER BY published_ts, room_id",
            (server_name,),
        )
        return [str(r["room_id"]) for r in rows]

    async def users_in_public_rooms(self) -> set[str]:
        """Users joined to a room anyone may join or read (join rule public, or
        world-readable history): the user directory lists them to everyone."""
        rows = await self.db.fetch(
            "SELECT rs.room_id, e.pdu FROM room_state rs JOIN events e ON e.event_id = rs.event_id "
            "WHERE rs.type IN ('m.room.join_rules', 'm.room.history_visibility') AND rs.state_key = ''",
            (),
        )
        public: set[str] = set()
        for row in rows:
            content = json.loads(row["pdu"]).get("content") or {}
            if content.get("join_rule") == "public" or content.get("history_visibility") == "world_readable":
                public.add(str(row["room_id"]))
        users: set[str] = set()
        ids = sorted(public)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            found = await self.db.fetch(
                f"SELECT DISTINCT user_id FROM room_memberships WHERE membership = 'join' "
                f"AND room_id IN ({', '.join('?' for _ in chunk)})", chunk,
            )
            users |= {str(r["user_id"]) for r in found}
        return users

    async def first_aliases(self, room_ids: Sequence[str]) -> dict[str, str]:
        if not room_ids:
            return {}
        marks = ", ".join("?" for _ in room_ids)
        rows = await self.db.fetch(
            f"SELECT room_id, room_alias FROM room_aliases WHERE room_id IN ({marks}) ORDER BY created_ts DESC",
            list(room_ids),
        )
        return {str(r["room_id"]): str(r["room_alias"]) for r in rows}

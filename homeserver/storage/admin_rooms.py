"""Rooms as the admin API lists them (the ``rooms`` table, not yet purged)."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.storage.database import Database


@dataclass(frozen=True)
class RoomSummaryRow:
    room_id: str
    room_version: str
    creator: str
    is_direct: bool
    created_ts: int


class AdminRoomRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def rooms(self) -> list[RoomSummaryRow]:
        rows = await self.db.fetch(
            "SELECT room_id, room_version, creator, is_direct, created_ts FROM rooms WHERE purged = 0 "
            "ORDER BY created_ts, room_id"
        )
        return [RoomSummaryRow(str(r["room_id"]), str(r["room_version"]), str(r["creator"]),
                               bool(r["is_direct"]), int(r["created_ts"])) for r in rows]

    async def room(self, room_id: str) -> RoomSummaryRow | None:
        row = await self.db.fetch_one(
            "SELECT room_id, room_version, creator, is_direct, created_ts FROM rooms "
            "WHERE purged = 0 AND room_id = ?", [room_id],
        )
        if row is None:
            return None
        return RoomSummaryRow(str(row["room_id"]), str(row["room_version"]), str(row["creator"]),
                              bool(row["is_direct"]), int(row["created_ts"]))

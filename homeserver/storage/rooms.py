"""Room memberships: who is in which room (read side; rows are written by RoomWriter)."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.storage.database import Database


@dataclass(frozen=True)
class Membership:
    room_id: str
    user_id: str
    membership: str
    event_id: str
    stream_pos: int
    joined_since: int | None
    forgotten: bool


_COLUMNS = "room_id, user_id, membership, event_id, stream_pos, joined_since, forgotten"


def _membership(row: dict[str, object]) -> Membership:
    joined = row["joined_since"]
    return Membership(
        str(row["room_id"]), str(row["user_id"]), str(row["membership"]), str(row["event_id"]),
        int(row["stream_pos"]),  # type: ignore[call-overload]
        None if joined is None else int(joined),  # type: ignore[call-overload]
        bool(row["forgotten"]),
    )


class RoomRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def memberships_of_user(self, user_id: str, include_forgotten: bool = False) -> list[Membership]:
        sql = f"SELECT {_COLUMNS} FROM room_memberships WHERE user_id = ?"
        if not include_forgotten:
            sql += " AND forgotten = 0"
        rows = await self.db.fetch(sql, (user_id,))
        return [_membership(r) for r in rows]

    async def membership(self, room_id: str, user_id: str) -> Membership | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM room_memberships WHERE room_id = ? AND user_id = ?", (room_id, user_id)
        )
        return _membership(row) if row else None

    async def members(self, room_id: str, memberships: tuple[str, ...] | None = None) -> list[Membership]:
        sql = f"SELECT {_COLUMNS} FROM room_memberships WHERE room_id = ?"
        params: list[object] = [room_id]
        if memberships:
            sql += f" AND membership IN ({', '.join('?' for _ in memberships)})"
            params += list(memberships)
        rows = await self.db.fetch(sql + " ORDER BY joined_since, stream_pos", params)
        return [_membership(r) for r in rows]

    async def joined_room_ids(self, user_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT room_id FROM room_memberships WHERE user_id = ? AND membership = 'join'", (user_id,)
        )
        return [str(r["room_id"]) for r in rows]

    async def users_sharing_a_room_in_any_state(self, user_id: str) -> set[str]:
        rows = await self.db.fetch(
            "SELECT DISTINCT o.user_id FROM room_memberships m JOIN room_memberships o "
            "ON o.room_id = m.room_id AND o.membership IN ('join', 'invite', 'knock') "
            "WHERE m.user_id = ? AND m.membership IN ('join', 'invite', 'knock')",
            (user_id,),
        )
        return {str(r["user_id"]) for r in rows} | {user_id}

    async def joined_user_ids(self, room_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT user_id FROM room_memberships WHERE room_id = ? AND membership = 'join'", (room_id,)
        )
        return [str(r["user_id"]) for r in rows]

    async def users_sharing_a_room(self, user_id: str) -> set[str]:
        rows = await self.db.fetch(
            "SELECT DISTINCT o.user_id FROM room_memberships m JOIN room_memberships o "
            "ON o.room_id = m.room_id AND o.membership = 'join' "
            "WHERE m.user_id = ? AND m.membership = 'join'",
            (user_id,),
        )
        users = {str(r["user_id"]) for r in rows}
        users.add(user_id)
        return users

    async def member_counts(self, room_ids: list[str]) -> dict[str, dict[str, int]]:
        """{room_id: {"join": n, "invite": m}}."""
        out: dict[str, dict[str, int]] = {r: {"join": 0, "invite": 0} for r in room_ids}
        for start in range(0, len(room_ids), 500):
            chunk = room_ids[start:start + 500]
            rows = await self.db.fetch(
                "SELECT room_id, membership, COUNT(*) AS n FROM room_memberships "
                f"WHERE room_id IN ({', '.join('?' for _ in chunk)}) AND membership IN ('join', 'invite') "
                "GROUP BY room_id, membership",
                chunk,
            )
            for row in rows:
                out[str(row["room_id"])][str(row["membership"])] = int(row["n"])
        return out

    async def heroes(self, room_ids: list[str], user_id: str, limit: int = 5) -> dict[str, list[str]]:
        """Spec: the first joined or invited members by stream order (never oneself);
        where there are none, the members who left or were banned."""
        out: dict[str, list[str]] = {r: [] for r in room_ids}
        departed: dict[str, list[str]] = {r: [] for r in room_ids}
        for start in range(0, len(room_ids), 500):
            chunk = room_ids[start:start + 500]
            rows = await self.db.fetch(
                "SELECT room_id, user_id, membership FROM room_memberships "
                f"WHERE room_id IN ({', '.join('?' for _ in chunk)}) "
                "AND membership IN ('join', 'invite', 'leave', 'ban') "
                "AND user_id <> ? ORDER BY room_id, stream_pos",
                [*chunk, user_id],
            )
            for row in rows:
                room_id = str(row["room_id"])
                heroes = out[room_id] if row["membership"] in ("join", "invite") else departed[room_id]
                if len(heroes) < limit:
                    heroes.append(str(row["user_id"]))
        return {r: heroes or departed[r] for r, heroes in out.items()}

    async def forget(self, room_id: str, user_id: str) -> None:
        await self.db.execute(
            "UPDATE room_memberships SET forgotten = 1 WHERE room_id = ? AND user_id = ?", (room_id, user_id)
        )

    async def all_forgotten_or_gone(self, room_id: str) -> bool:
        row = await self.db.fetch_one(
            "SELECT COUNT(*) AS n FROM room_memberships WHERE room_id = ? AND forgotten = 0", (room_id,)
        )
        return not row or int(row["n"]) == 0

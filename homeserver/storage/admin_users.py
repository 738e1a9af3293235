"""Administration of accounts: flags (admin, locked, suspended, shadow-banned, erased),
listing and searching, the admin audit log and per-user rate-limit overrides."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database, Row
from homeserver.storage.streams import AUTH_COUNTER, bump_counter

FLAGS = ("admin", "deactivated", "shadow_banned", "locked", "suspended", "erased")

_COLUMNS = (
    "u.user_id, u.localpart, u.email, u.password_hash, u.is_placeholder, u.created_ts, "
    + ", ".join(f"u.{f}" for f in FLAGS)
)


@dataclass(frozen=True)
class AdminUserRow:
    user_id: str
    localpart: str
    email: str | None
    has_password: bool
    is_placeholder: bool
    created_ts: int
    admin: bool
    deactivated: bool
    shadow_banned: bool
    locked: bool
    suspended: bool
    erased: bool
    displayname: str | None = None
    avatar_url: str | None = None


def _row(row: Row) -> AdminUserRow:
    return AdminUserRow(
        user_id=str(row["user_id"]), localpart=str(row["localpart"]), email=row["email"],
        has_password=row["password_hash"] is not None, is_placeholder=bool(row["is_placeholder"]),
        created_ts=int(row["created_ts"]),
        **{f: bool(row[f]) for f in FLAGS},  # type: ignore[arg-type]
        displayname=row.get("displayname"), avatar_url=row.get("avatar_url"),
    )


@dataclass(frozen=True)
class UserQuery:
    """Filters and paging of ``GET /_synapse/admin/v2/users``."""

    server_name: str = ""
    offset: int = 0
    limit: int = 100
    user_id: str | None = None
    name: str | None = None
    deactivated: bool = False
    admins: bool | None = None
    locked: bool = True
    order_by: str = "name"
    descending: bool = False


_ORDER = {
    "name": "u.user_id", "admin": "u.admin", "deactivated": "u.deactivated",
    "shadow_banned": "u.shadow_banned", "creation_ts": "u.created_ts", "locked": "u.locked",
    "displayname": "dn.value",
}


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like(value: str) -> str:
    return f"%{_escape(value)}%"


class AdminUserRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    def _select(self) -> str:
        return (
            f"SELECT {_COLUMNS}, dn.value AS displayname, av.value AS avatar_url FROM users u "
            "LEFT JOIN profile_fields dn ON dn.user_id = u.user_id AND dn.field_name = 'displayname' "
            "LEFT JOIN profile_fields av ON av.user_id = u.user_id AND av.field_name = 'avatar_url'"
        )

    async def get(self, user_id: str) -> AdminUserRow | None:
        row = await self.db.fetch_one(self._select() + " WHERE u.user_id = ?", [user_id])
        return _row(row) if row else None

    async def is_admin(self, user_id: str) -> bool:
        row = await self.db.fetch_one("SELECT admin FROM users WHERE user_id = ?", [user_id])
        return bool(row and row["admin"])

    async def flags_and_override(self, user_id: str) -> tuple[dict[str, bool], tuple[int, int] | None] | None:
        """The account's flags and its rate-limit override (if any), in one statement."""
        row = await self.db.fetch_one(
            f"SELECT {', '.join('u.' + f for f in FLAGS)}, o.messages_per_second, o.burst_count "
            "FROM users u LEFT JOIN ratelimit_overrides o ON o.user_id = u.user_id WHERE u.user_id = ?",
            [user_id],
        )
        if row is None:
            return None
        override = None
        if row["messages_per_second"] is not None:
            override = (int(row["messages_per_second"]), int(row["burst_count"]))
        return {f: bool(row[f]) for f in FLAGS}, override

    async def set_flag(self, user_id: str, flag: str, value: bool) -> None:
        if flag not in FLAGS:
            raise ValueError(flag)
        async with self.db.transaction() as conn:
            await self.db.execute(f"UPDATE users SET {flag} = ? WHERE user_id = ?", [int(value), user_id], conn)
            # Instances that remember accounts' flags with their tokens read them again.
            await bump_counter(self.db, AUTH_COUNTER, conn)

    async def clear_credentials(self, user_id: str) -> None:
        await self.db.execute(
            "UPDATE users SET password_hash = NULL, login_key = NULL WHERE user_id = ?", [user_id]
        )

    async def search(self, query: UserQuery) -> tuple[list[AdminUserRow], int]:
        esc = "'\\\\'" if self.db.dialect == "mysql" else "'\\'"
        where = ["u.is_placeholder = 0", f"u.user_id LIKE ? ESCAPE {esc}"]
        params: list[Any] = ["%:" + _escape(query.server_name)]
        if not query.deactivated:
            where.append("u.deactivated = 0")
        if not query.locked:
            where.append("u.locked = 0")
        if query.admins is not None:
            where.append("u.admin = ?")
            params.append(int(query.admins))
        if query.user_id:
            where.append(f"LOWER(u.user_id) LIKE ? ESCAPE {esc}")
            params.append(_like(query.user_id.lower()))
        if query.name:
            where.append(f"(LOWER(u.user_id) LIKE ? ESCAPE {esc} OR LOWER(dn.value) LIKE ? ESCAPE {esc})")
            params += [_like(query.name.lower()), _like(query.name.lower())]
        clause = " WHERE " + " AND ".join(where)
        base = self._select() + clause
        count = await self.db.fetch_one(f"SELECT COUNT(*) AS n FROM ({base}) AS matched", params)
        order = _ORDER.get(query.order_by, "u.user_id")
        direction = "DESC" if query.descending else "ASC"
        rows = await self.db.fetch(
            f"{base} ORDER BY {order} {direction}, u.user_id {direction} LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        )
        return [_row(r) for r in rows], int(count["n"]) if count else 0

    # ------------------------------------------------------------ audit log
    async def audit(self, admin_user_id: str, action: str, target: str, detail: dict[str, Any],
                    now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO admin_audit (ts, admin_user_id, action, target, detail) VALUES (?, ?, ?, ?, ?)",
            [now_ms, admin_user_id, action, target, json.dumps(detail, sort_keys=True)],
        )

    async def audit_entries(self, target: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        sql = "SELECT id, ts, admin_user_id, action, target, detail FROM admin_audit"
        params: list[Any] = []
        if target is not None:
            sql += " WHERE target = ?"
            params.append(target)
        rows = await self.db.fetch(sql + " ORDER BY id DESC LIMIT ?", [*params, limit])
        return [{**r, "detail": json.loads(r["detail"]) if r["detail"] else {}} for r in rows]

    # ------------------------------------------------- rate-limit overrides
    async def get_override(self, user_id: str) -> tuple[int, int] | None:
        row = await self.db.fetch_one(
            "SELECT messages_per_second, burst_count FROM ratelimit_overrides WHERE user_id = ?",
            [user_id],
        )
        return (int(row["messages_per_second"]), int(row["burst_count"])) if row else None

    async def set_override(self, user_id: str, per_second: int, burst: int) -> None:
        sql = self.db.upsert_sql(
            "ratelimit_overrides", ["user_id"], ["user_id", "messages_per_second", "burst_count"]
        )
        await self.db.execute(sql, [user_id, per_second, burst])

    async def delete_override(self, user_id: str) -> None:
        await self.db.execute("DELETE FROM ratelimit_overrides WHERE user_id = ?", [user_id])

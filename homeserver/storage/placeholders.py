"""Placeholder accounts (reserved for e-mail addresses nobody registered yet),
e-mail lookups, and server secrets."""

from __future__ import annotations

import secrets

from homeserver.storage.database import Database


class PlaceholderRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def secret(self, name: str) -> str:
        """A random server secret, created once and shared by every instance."""
        await self.db.execute(
            self.db.insert_ignore_sql("server_secrets", ["name", "value"]),
            [name, secrets.token_hex(32)],
        )
        row = await self.db.fetch_one("SELECT value FROM server_secrets WHERE name = ?", [name])
        assert row is not None
        return str(row["value"])

    async def reserve(self, user_id: str, localpart: str, email: str, now_ms: int) -> None:
        """Insert a placeholder user unless the id or the address is taken (then nothing)."""
        await self.db.execute(
            self.db.insert_ignore_sql(
                "users", ["user_id", "localpart", "email", "is_placeholder", "deactivated", "created_ts"]
            ),
            [user_id, localpart, email, 1, 0, now_ms],
        )

    async def holder_of(self, email: str) -> tuple[str, bool] | None:
        """(user id, is placeholder) of the account holding ``email`` (deactivated or not)."""
        row = await self.db.fetch_one(
            "SELECT user_id, is_placeholder FROM users WHERE email = ?", [email]
        )
        return (str(row["user_id"]), bool(row["is_placeholder"])) if row else None

    async def is_placeholder(self, user_id: str) -> bool:
        row = await self.db.fetch_one(
            "SELECT is_placeholder FROM users WHERE user_id = ?", [user_id]
        )
        return bool(row and row["is_placeholder"])

    async def record_lookup(self, asker: str, target: str, now_ms: int) -> None:
        await self.db.execute(
            self.db.upsert_sql("email_lookups", ["asker", "target"], ["asker", "target", "last_ts"]),
            [asker, target, now_ms],
        )

    async def placeholders_created_before(
        self, server_name: str, before_ts: int, limit: int = 200
    ) -> list[str]:
        """This server's placeholders created before ``before_ts`` (server names hold no % or _)."""
        rows = await self.db.fetch(
            "SELECT user_id FROM users WHERE is_placeholder = 1 AND created_ts < ? AND user_id LIKE ? "
            "ORDER BY created_ts LIMIT " + str(int(limit)),
            [before_ts, f"%:{server_name}"],
        )
        return [str(r["user_id"]) for r in rows]

    async def delete_placeholder(self, user_id: str) -> bool:
        """Delete a placeholder's own rows; False if it is no longer a placeholder."""
        async with self.db.transaction() as conn:
            count = await self.db.execute(
                "DELETE FROM users WHERE user_id = ? AND is_placeholder = 1", [user_id], conn
            )
            if count != 1:
                return False
            await self.db.execute("DELETE FROM profile_fields WHERE user_id = ?", [user_id], conn)
            await self.db.execute("DELETE FROM email_lookups WHERE target = ?", [user_id], conn)
        return True

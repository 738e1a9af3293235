"""The deployment's server signing key, shared by every instance through the database."""

from __future__ import annotations

from homeserver.storage.database import Database


class ServerKeyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get_or_create(self, server_name: str, key_id: str, seed_b64: str, now_ms: int) -> tuple[str, str]:
        """Store ``(key_id, seed)`` unless a key exists; return the key every instance uses.

        ``INSERT IGNORE`` is atomic: when several instances start at once,
        exactly one row wins and all of them read that row back.
        """
        await self.db.execute(
            self.db.insert_ignore_sql("server_signing_keys", ["server_name", "key_id", "seed", "created_ts"]),
            (server_name, key_id, seed_b64, now_ms),
        )
        row = await self.db.fetch_one(
            "SELECT key_id, seed FROM server_signing_keys WHERE server_name = ?", (server_name,)
        )
        assert row is not None
        return str(row["key_id"]), str(row["seed"])

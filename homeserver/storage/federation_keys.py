"""Remote servers' signing keys as fetched (from the server itself or a notary)."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.storage.database import Database


@dataclass(frozen=True)
class StoredServerKey:
    server_name: str
    key_id: str
    public_key: str  # unpadded base64
    valid_until_ts: int  # effective validity (see the migration)
    expired_ts: int | None
    fetched_ts: int
    response: str  # the server's signed key response, canonical JSON


def _row(row: dict[str, object]) -> StoredServerKey:
    expired = row["expired_ts"]
    return StoredServerKey(
        str(row["server_name"]), str(row["key_id"]), str(row["public_key"]), int(str(row["valid_until_ts"])),
        None if expired is None else int(str(expired)), int(str(row["fetched_ts"])), str(row["response"]),
    )


class ServerKeyCache:
    COLUMNS = ["server_name", "key_id", "public_key", "valid_until_ts", "expired_ts", "fetched_ts", "response"]

    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, server_name: str, key_id: str) -> StoredServerKey | None:
        row = await self.db.fetch_one(
            "SELECT * FROM federation_server_keys WHERE server_name = ? AND key_id = ?", (server_name, key_id)
        )
        return None if row is None else _row(row)

    async def for_server(self, server_name: str) -> list[StoredServerKey]:
        rows = await self.db.fetch(
            "SELECT * FROM federation_server_keys WHERE server_name = ? ORDER BY key_id", (server_name,)
        )
        return [_row(row) for row in rows]

    async def store(self, keys: list[StoredServerKey]) -> None:
        """Keep each key unless the stored one is valid for longer (a stale response never shortens it)."""
        for key in keys:
            current = await self.get(key.server_name, key.key_id)
            if current is not None and current.valid_until_ts > key.valid_until_ts:
                continue
            await self.db.execute(
                self.db.upsert_sql("federation_server_keys", ["server_name", "key_id"], self.COLUMNS),
                (key.server_name, key.key_id, key.public_key, key.valid_until_ts, key.expired_ts,
                 key.fetched_ts, key.response),
            )

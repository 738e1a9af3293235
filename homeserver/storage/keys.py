"""Device keys, one-time and fallback keys, the device-list stream and key-query grants.

One-time keys are handed out **at most once**: a claim picks candidate rows
and deletes one with ``DELETE ... WHERE id = ?``; only the caller whose
delete affected a row owns the key (a concurrent claimer's delete affects
nothing and it moves on to the next candidate).  This holds on SQLite and
MySQL, on one instance or many sharing the database, without holding locks
across statements.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from tortoise.backends.base.client import BaseDBAsyncClient

from homeserver.storage.database import Database
from homeserver.storage.streams import StreamRepository

DEVICE_LISTS_STREAM = "device_lists"

# How many candidate one-time keys a claim looks at per round.
_CLAIM_CANDIDATES = 16


@dataclass(frozen=True)
class StoredDeviceKeys:
    user_id: str
    device_id: str
    ed25519_key: str
    key_json: str
    spk_key: str | None
    spk_created_ts: int | None


@dataclass(frozen=True)
class NewOneTimeKey:
    algorithm: str
    key_id: str
    key_json: str


def _placeholders(n: int) -> str:
    return ", ".join("?" for _ in range(n))


class KeyRepository:
    def __init__(self, db: Database, streams: StreamRepository) -> None:
        self.db = db
        self.streams = streams

    # ------------------------------------------------------------ device keys
    async def get_device_keys(self, user_id: str, device_id: str) -> StoredDeviceKeys | None:
        row = await self.db.fetch_one(
            "SELECT user_id, device_id, ed25519_key, key_json, spk_key, spk_created_ts "
            "FROM e2e_device_keys WHERE user_id = ? AND device_id = ?",
            (user_id, device_id),
        )
        return _device_keys(row) if row else None

    async def device_keys_for_users(self, user_ids: Sequence[str]) -> list[StoredDeviceKeys]:
        if not user_ids:
            return []
        rows = await self.db.fetch(
            "SELECT user_id, device_id, ed25519_key, key_json, spk_key, spk_created_ts "
            f"FROM e2e_device_keys WHERE user_id IN ({_placeholders(len(user_ids))})",
            list(user_ids),
        )
        return [_device_keys(r) for r in rows]

    async def store_device_keys(self, keys: StoredDeviceKeys, now_ms: int) -> int:
        """Insert or replace a device's keys and record a device-list change; return its position."""
        async with self.db.transaction() as conn:
            await self.db.execute(
                self.db.upsert_sql(
                    "e2e_device_keys",
                    ["user_id", "device_id"],
                    ["user_id", "device_id", "ed25519_key", "key_json", "spk_key",
                     "spk_created_ts", "updated_ts"],
                ),
                (keys.user_id, keys.device_id, keys.ed25519_key, keys.key_json, keys.spk_key,
                 keys.spk_created_ts, now_ms),
                conn=conn,
            )
            return await self._record_change(conn, keys.user_id, [keys.device_id], now_ms)

    async def delete_devices(self, user_id: str, device_ids: Sequence[str], now_ms: int) -> int:
        """Forget every key of the devices and record a device-list change; return its position."""
        marks = _placeholders(len(device_ids))
        async with self.db.transaction() as conn:
            for table in ("e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys"):
                await self.db.execute(
                    f"DELETE FROM {table} WHERE user_id = ? AND device_id IN ({marks})",
                    [user_id, *device_ids],
                    conn=conn,
                )
            return await self._record_change(conn, user_id, device_ids, now_ms)

    async def record_change(self, user_id: str, device_ids: Sequence[str], now_ms: int) -> int:
        async with self.db.transaction() as conn:
            return await self._record_change(conn, user_id, device_ids, now_ms)

    async def _record_change(
        self, conn: BaseDBAsyncClient, user_id: str, device_ids: Sequence[str], now_ms: int
    ) -> int:
        position = await self.streams.advance(conn, DEVICE_LISTS_STREAM)
        # A change of no device in particular (cross-signing keys, signatures) is one
        # row with an empty device id: the user is still reported as changed.
        for device_id in device_ids or [""]:
            await self.db.execute(
                "INSERT INTO device_list_changes (position, user_id, device_id, created_ts) "
                "VALUES (?, ?, ?, ?)",
                (position, user_id, device_id, now_ms),
                conn=conn,
            )
        return position

    async def changed_users(self, after: int, upto: int) -> set[str]:
        """Users with a device-list change at a position in ``(after, upto]``."""
        if upto <= after:
            return set()
        rows = await self.db.fetch(
            "SELECT DISTINCT user_id FROM device_list_changes WHERE position > ? AND position <= ?",
            (after, upto),
        )
        return {str(r["user_id"]) for r in rows}

    # -------------------------------------------------------- one-time keys
    async def existing_one_time_keys(
        self, user_id: str, device_id: str, keys: Sequence[NewOneTimeKey]
    ) -> dict[tuple[str, str], str]:
        """The stored JSON of those of ``keys`` that already exist, by (algorithm, key_id)."""
        found: dict[tuple[str, str], str] = {}
        wanted = {(k.algorithm, k.key_id) for k in keys}
        for start in range(0, len(keys), 200):
            chunk = keys[start:start + 200]
            rows = await self.db.fetch(
                "SELECT algorithm, key_id, key_json FROM e2e_one_time_keys "
                f"WHERE user_id = ? AND device_id = ? AND key_id IN ({_placeholders(len(chunk))})",
                [user_id, device_id, *(k.key_id for k in chunk)],
            )
            for r in rows:
                ident = (str(r["algorithm"]), str(r["key_id"]))
                if ident in wanted:
                    found[ident] = str(r["key_json"])
        return found

    async def add_one_time_keys(
        self, user_id: str, device_id: str, keys: Iterable[NewOneTimeKey], now_ms: int
    ) -> None:
        sql = self.db.insert_ignore_sql(
            "e2e_one_time_keys",
            ["user_id", "device_id", "algorithm", "key_id", "key_json", "created_ts"],
        )
        async with self.db.transaction() as conn:
            for key in keys:
                await self.db.execute(
                    sql, (user_id, device_id, key.algorithm, key.key_id, key.key_json, now_ms), conn=conn
                )

    async def count_one_time_keys(self, user_id: str, device_id: str) -> dict[str, int]:
        rows = await self.db.fetch(
            "SELECT algorithm, COUNT(*) AS n FROM e2e_one_time_keys "
            "WHERE user_id = ? AND device_id = ? GROUP BY algorithm",
            (user_id, device_id),
        )
        return {str(r["algorithm"]): int(r["n"]) for r in rows}

    async def claim_one_time_key(
        self, user_id: str, device_id: str, algorithm: str
    ) -> tuple[str, str] | None:
        """Take one key of ``algorithm`` for good; ``(key_id, key_json)`` or None if none is left."""
        while True:
            rows = await self.db.fetch(
                "SELECT id, key_id, key_json FROM e2e_one_time_keys "
                "WHERE user_id = ? AND device_id = ? AND algorithm = ? ORDER BY id LIMIT ?",
                (user_id, device_id, algorithm, _CLAIM_CANDIDATES),
            )
            if not rows:
                return None
            # Concurrent claimers start at different candidates to collide less.
            random.shuffle(rows)
            for row in rows:
                deleted = await self.db.execute(
                    "DELETE FROM e2e_one_time_keys WHERE id = ?", (row["id"],)
                )
                if deleted == 1:
                    return str(row["key_id"]), str(row["key_json"])

    # -------------------------------------------------------- fallback keys
    async def set_fallback_key(
        self, user_id: str, device_id: str, algorithm: str, key_id: str, key_json: str, now_ms: int
    ) -> None:
        """Store the device's fallback key for ``algorithm`` (one per algorithm).

        Re-uploading the same key keeps its ``used`` flag; a new key starts unused.
        """
        row = await self.db.fetch_one(
            "SELECT key_id, key_json FROM e2e_fallback_keys "
            "WHERE user_id = ? AND device_id = ? AND algorithm = ?",
            (user_id, device_id, algorithm),
        )
        if row is not None and row["key_id"] == key_id and row["key_json"] == key_json:
            return
        await self.db.execute(
            self.db.upsert_sql(
                "e2e_fallback_keys",
                ["user_id", "device_id", "algorithm"],
                ["user_id", "device_id", "algorithm", "key_id", "key_json", "used", "created_ts"],
            ),
            (user_id, device_id, algorithm, key_id, key_json, False, now_ms),
        )

    async def claim_fallback_key(
        self, user_id: str, device_id: str, algorithm: str
    ) -> tuple[str, str] | None:
        """The fallback key (handed out as often as needed), marked as used."""
        row = await self.db.fetch_one(
            "SELECT key_id, key_json FROM e2e_fallback_keys "
            "WHERE user_id = ? AND device_id = ? AND algorithm = ?",
            (user_id, device_id, algorithm),
        )
        if row is None:
            return None
        await self.db.execute(
            "UPDATE e2e_fallback_keys SET used = ? "
            "WHERE user_id = ? AND device_id = ? AND algorithm = ? AND key_id = ?",
            (True, user_id, device_id, algorithm, row["key_id"]),
        )
        return str(row["key_id"]), str(row["key_json"])

    async def sync_summary(self, user_id: str, device_id: str) -> tuple[dict[str, int], list[str], int | None]:
        """What every /sync reports about a device's keys, in one round trip:
        :meth:`count_one_time_keys`, :meth:`unused_fallback_algorithms` and the
        signed pre-key's ``spk_created_ts`` (None without device keys)."""
        rows = await self.db.fetch(
            "SELECT 'o' AS kind, algorithm AS name, COUNT(*) AS n FROM e2e_one_time_keys "
            "WHERE user_id = ? AND device_id = ? GROUP BY algorithm "
            "UNION ALL SELECT 'f' AS kind, algorithm AS name, 0 AS n FROM e2e_fallback_keys "
            "WHERE user_id = ? AND device_id = ? AND used = ? "
            "UNION ALL SELECT 's' AS kind, '' AS name, spk_created_ts AS n FROM e2e_device_keys "
            "WHERE user_id = ? AND device_id = ?",
            (user_id, device_id, user_id, device_id, False, user_id, device_id),
        )
        counts: dict[str, int] = {}
        fallback: list[str] = []
        spk_created_ts: int | None = None
        for r in rows:
            kind = str(r["kind"])
            if kind == "o":
                counts[str(r["name"])] = int(r["n"])
            elif kind == "f":
                fallback.append(str(r["name"]))
            elif r["n"] is not None:
                spk_created_ts = int(r["n"])
        return counts, sorted(fallback), spk_created_ts

    async def unused_fallback_algorithms(self, user_id: str, device_id: str) -> list[str]:
        rows = await self.db.fetch(
            "SELECT algorithm FROM e2e_fallback_keys "
            "WHERE user_id = ? AND device_id = ? AND used = ? ORDER BY algorithm",
            (user_id, device_id, False),
        )
        return [str(r["algorithm"]) for r in rows]

    # ------------------------------------------------------ key-query grants
    async def add_grant(self, requester_id: str, target_id: str, now_ms: int) -> None:
        await self.db.execute(
            self.db.insert_ignore_sql("key_query_grants", ["requester_id", "target_id", "created_ts"]),
            (requester_id, target_id, now_ms),
        )

    async def granted_targets(self, requester_id: str) -> set[str]:
        rows = await self.db.fetch(
            "SELECT target_id FROM key_query_grants WHERE requester_id = ?", (requester_id,)
        )
        return {str(r["target_id"]) for r in rows}

    async def grantees(self, target_id: str) -> set[str]:
        rows = await self.db.fetch(
            "SELECT requester_id FROM key_query_grants WHERE target_id = ?", (target_id,)
        )
        return {str(r["requester_id"]) for r in rows}


def _device_keys(row: dict[str, object]) -> StoredDeviceKeys:
    spk_ts = row["spk_created_ts"]
    return StoredDeviceKeys(
        user_id=str(row["user_id"]),
        device_id=str(row["device_id"]),
        ed25519_key=str(row["ed25519_key"]),
        key_json=str(row["key_json"]),
        spk_key=str(row["spk_key"]) if row["spk_key"] is not None else None,
        spk_created_ts=int(spk_ts) if spk_ts is not None else None,  # type: ignore[call-overload]
    )

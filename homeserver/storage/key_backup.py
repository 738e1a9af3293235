"""Server-side room key backup: versions with opaque ``auth_data`` and per-session keys."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from common.errors import Codes, MatrixError
from homeserver.storage.database import Database

VERSION_ATTEMPTS = 100


@dataclass(frozen=True)
class BackupVersion:
    user_id: str
    version: int
    algorithm: str
    auth_data: str
    etag: int


@dataclass(frozen=True)
class BackupKey:
    room_id: str
    session_id: str
    first_message_index: int
    forwarded_count: int
    is_verified: bool
    session_data: str


Better = Callable[[BackupKey, BackupKey], bool]
"""``better(new, old)``: should ``new`` replace ``old``?"""


def _version(row: dict[str, object]) -> BackupVersion:
    return BackupVersion(
        str(row["user_id"]), int(row["version"]), str(row["algorithm"]),  # type: ignore[call-overload]
        str(row["auth_data"]), int(row["etag"]),  # type: ignore[call-overload]
    )


def _key(row: dict[str, object]) -> BackupKey:
    return BackupKey(
        str(row["room_id"]), str(row["session_id"]),
        int(row["first_message_index"]), int(row["forwarded_count"]),  # type: ignore[call-overload]
        bool(row["is_verified"]), str(row["session_data"]),
    )


_KEY_COLUMNS = "room_id, session_id, first_message_index, forwarded_count, is_verified, session_data"


class KeyBackupRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------- versions
    async def create_version(self, user_id: str, algorithm: str, auth_data: str, now_ms: int) -> int:
        """A new version, numbered after every earlier one (deleted ones included).

        Concurrent creates race for the next number; each round at least one
        of them wins, so the attempts cover any realistic burst (40 at once
        used to exhaust 10 attempts and answer 500).  The jitter spreads the
        losers apart.
        """
        for _ in range(VERSION_ATTEMPTS):
            row = await self.db.fetch_one(
                "SELECT MAX(version) AS v FROM room_key_backup_versions WHERE user_id = ?", (user_id,)
            )
            version = int(row["v"] or 0) + 1 if row else 1
            try:
                await self.db.execute(
                    "INSERT INTO room_key_backup_versions "
                    "(user_id, version, algorithm, auth_data, etag, deleted, created_ts) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (user_id, version, algorithm, auth_data, 0, False, now_ms),
                )
                return version
            except IntegrityError:
                # A concurrent create took this number.
                await asyncio.sleep(random.uniform(0, 0.01))
        raise MatrixError(429, Codes.LIMIT_EXCEEDED, "Too many concurrent backup versions created",
                          extra={"retry_after_ms": 1000}, headers={"Retry-After": "1"})

    async def get_version(self, user_id: str, version: int | None = None) -> BackupVersion | None:
        """A live version, or the newest live one when ``version`` is None."""
        if version is None:
            row = await self.db.fetch_one(
                "SELECT user_id, version, algorithm, auth_data, etag FROM room_key_backup_versions "
                "WHERE user_id = ? AND deleted = ? ORDER BY version DESC LIMIT 1",
                (user_id, False),
            )
        else:
            row = await self.db.fetch_one(
                "SELECT user_id, version, algorithm, auth_data, etag FROM room_key_backup_versions "
                "WHERE user_id = ? AND version = ? AND deleted = ?",
                (user_id, version, False),
            )
        return _version(row) if row else None

    async def update_auth_data(self, user_id: str, version: int, auth_data: str) -> bool:
        updated = await self.db.execute(
            "UPDATE room_key_backup_versions SET auth_data = ? "
            "WHERE user_id = ? AND version = ? AND deleted = ?",
            (auth_data, user_id, version, False),
        )
        return updated > 0

    async def delete_version(self, user_id: str, version: int) -> bool:
        async with self.db.transaction() as conn:
            updated = await self.db.execute(
                "UPDATE room_key_backup_versions SET deleted = ? "
                "WHERE user_id = ? AND version = ? AND deleted = ?",
                (True, user_id, version, False),
                conn=conn,
            )
            await self.db.execute(
                "DELETE FROM room_key_backup_keys WHERE user_id = ? AND version = ?",
                (user_id, version),
                conn=conn,
            )
        return updated > 0

    async def count(self, user_id: str, version: int) -> int:
        row = await self.db.fetch_one(
            "SELECT COUNT(*) AS n FROM room_key_backup_keys WHERE user_id = ? AND version = ?",
            (user_id, version),
        )
        return int(row["n"]) if row else 0

    # ------------------------------------------------------------------ keys
    async def put_keys(
        self, user_id: str, version: int, keys: Sequence[BackupKey], better: Better
    ) -> int:
        """Store each key unless the stored one is better; return how many changed.

        The version's etag moves on when anything changed.
        """
        upsert = self.db.upsert_sql(
            "room_key_backup_keys",
            ["user_id", "version", "room_id", "session_id"],
            ["user_id", "version", "room_id", "session_id", "first_message_index",
             "forwarded_count", "is_verified", "session_data"],
        )
        changed = 0
        async with self.db.transaction() as conn:
            for key in keys:
                row = await self.db.fetch_one(
                    f"SELECT {_KEY_COLUMNS} FROM room_key_backup_keys "
                    "WHERE user_id = ? AND version = ? AND room_id = ? AND session_id = ?",
                    (user_id, version, key.room_id, key.session_id),
                    conn=conn,
                )
                if row is not None and not better(key, _key(row)):
                    continue
                await self.db.execute(
                    upsert,
                    (user_id, version, key.room_id, key.session_id, key.first_message_index,
                     key.forwarded_count, key.is_verified, key.session_data),
                    conn=conn,
                )
                changed += 1
            if changed:
                await self._bump_etag(conn, user_id, version)
        return changed

    async def get_keys(
        self, user_id: str, version: int, room_id: str | None = None, session_id: str | None = None
    ) -> list[BackupKey]:
        where, params = self._where(user_id, version, room_id, session_id)
        rows = await self.db.fetch(
            f"SELECT {_KEY_COLUMNS} FROM room_key_backup_keys WHERE {where}", params
        )
        return [_key(r) for r in rows]

    async def delete_keys(
        self, user_id: str, version: int, room_id: str | None = None, session_id: str | None = None
    ) -> int:
        where, params = self._where(user_id, version, room_id, session_id)
        async with self.db.transaction() as conn:
            deleted = await self.db.execute(
                f"DELETE FROM room_key_backup_keys WHERE {where}", params, conn=conn
            )
            if deleted:
                await self._bump_etag(conn, user_id, version)
        return deleted

    @staticmethod
    def _where(
        user_id: str, version: int, room_id: str | None, session_id: str | None
    ) -> tuple[str, list[object]]:
        where = "user_id = ? AND version = ?"
        params: list[object] = [user_id, version]
        if room_id is not None:
            where += " AND room_id = ?"
            params.append(room_id)
        if session_id is not None:
            where += " AND session_id = ?"
            params.append(session_id)
        return where, params

    async def _bump_etag(self, conn: object, user_id: str, version: int) -> None:
        await self.db.execute(
            "UPDATE room_key_backup_versions SET etag = etag + 1 WHERE user_id = ? AND version = ?",
            (user_id, version),
            conn=conn,  # type: ignore[arg-type]
        )

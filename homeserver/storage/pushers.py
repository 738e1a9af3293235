"""Pushers of users (the ``/pushers`` API)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database


@dataclass(frozen=True)
class PusherRow:
    user_id: str
    device_id: str
    pusher: dict[str, Any]
    # When the pusher was last set (ms): the Push Gateway API's pushkey_ts, in seconds.
    updated_ts: int = 0


def _key(pushkey: str) -> str:
    return hashlib.sha256(pushkey.encode("utf-8")).hexdigest()


class PusherRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def for_user(self, user_id: str) -> list[PusherRow]:
        rows = await self.db.fetch(
            "SELECT user_id, device_id, pusher_json FROM pushers WHERE user_id = ? ORDER BY created_ts, app_id, pushkey_hash",
            (user_id,),
        )
        return [PusherRow(str(r["user_id"]), str(r["device_id"]), json.loads(r["pusher_json"])) for r in rows]

    async def for_users(self, user_ids: Sequence[str]) -> list[PusherRow]:
        if not user_ids:
            return []
        out: list[PusherRow] = []
        ids = list(user_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetch(
                "SELECT user_id, device_id, pusher_json, created_ts FROM pushers "
                f"WHERE user_id IN ({', '.join('?' for _ in chunk)})", chunk,
            )
            out += [PusherRow(str(r["user_id"]), str(r["device_id"]), json.loads(r["pusher_json"]),
                              int(r["created_ts"])) for r in rows]
        return out

    async def upsert(self, user_id: str, device_id: str, pusher: dict[str, Any], now_ms: int) -> None:
        await self.db.execute(
            self.db.upsert_sql(
                "pushers", ["user_id", "app_id", "pushkey_hash"],
                ["user_id", "app_id", "pushkey_hash", "device_id", "pusher_json", "created_ts"],
            ),
            (user_id, pusher["app_id"], _key(pusher["pushkey"]), device_id, json.dumps(pusher, ensure_ascii=False), now_ms),
        )

    async def delete(self, user_id: str, app_id: str, pushkey: str) -> None:
        await self.db.execute(
            "DELETE FROM pushers WHERE user_id = ? AND app_id = ? AND pushkey_hash = ?",
            (user_id, app_id, _key(pushkey)),
        )

    async def delete_for_others(self, user_id: str, app_id: str, pushkey: str) -> None:
        """Without ``append`` a pushkey belongs to one user only (spec)."""
        await self.db.execute(
            "DELETE FROM pushers WHERE app_id = ? AND pushkey_hash = ? AND user_id <> ?",
            (app_id, _key(pushkey), user_id),
        )

    async def delete_for_devices(self, user_id: str, device_ids: Sequence[str]) -> None:
        if not device_ids:
            return
        await self.db.execute(
            f"DELETE FROM pushers WHERE user_id = ? AND device_id IN ({', '.join('?' for _ in device_ids)})",
            [user_id, *device_ids],
        )

"""Cached device lists of remote users (table ``remote_device_lists``, migration 0175)."""

from __future__ import annotations

from homeserver.storage.database import Database


class RemoteDeviceLists:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def get(self, owner: str, user_ids: list[str]) -> dict[str, str]:
        """The cached, still valid bodies (JSON text) of those users."""
        out: dict[str, str] = {}
        for start in range(0, len(user_ids), 300):
            chunk = user_ids[start:start + 300]
            marks = ", ".join("?" for _ in chunk)
            rows = await self.db.fetch(
                f"SELECT user_id, body FROM remote_device_lists WHERE owner = ? AND user_id IN ({marks}) "
                "AND body IS NOT NULL", (owner, *chunk))
            out.update({str(r["user_id"]): str(r["body"]) for r in rows})
        return out

    async def put(self, owner: str, user_id: str, body: str, fetched_ts: int, started_ts: int) -> None:
        """Store an answer fetched from ``started_ts`` on, unless the list changed since then."""
        await self.db.execute(
            self.db.insert_ignore_sql("remote_device_lists", ["owner", "user_id", "changed_ts", "fetched_ts"]),
            (owner, user_id, 0, fetched_ts))
        await self.db.execute(
            "UPDATE remote_device_lists SET body = ?, fetched_ts = ? WHERE owner = ? AND user_id = ? "
            "AND changed_ts < ?", (body, fetched_ts, owner, user_id, started_ts))

    async def invalidate(self, owner: str, user_id: str, now_ms: int) -> None:
        await self.db.execute(
            self.db.upsert_sql("remote_device_lists", ["owner", "user_id"],
                               ["owner", "user_id", "body", "changed_ts", "fetched_ts"]),
            (owner, user_id, None, now_ms, 0))

"""To-device messages: queued per (user, device) at a position of the ``to_device`` stream."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from tortoise.exceptions import IntegrityError

from homeserver.storage.database import Database
from homeserver.storage.streams import StreamRepository


@dataclass(frozen=True)
class ToDeviceRow:
    stream_pos: int
    sender: str
    type: str
    content: dict[str, Any]


class ToDeviceRepository:
    def __init__(self, db: Database, streams: StreamRepository) -> None:
        self.db = db
        self.streams = streams

    async def enqueue(self, sender: str, sender_device: str, txn_id: str, event_type: str,
                      messages: list[tuple[str, str, dict[str, Any]]], now_ms: int) -> int | None:
        """Queue ``(user_id, device_id, content)`` messages; None if the transaction was seen before."""
        try:
            async with self.db.transaction() as conn:
                await self.db.execute(
                    "INSERT INTO to_device_txns (sender, device_id, txn_id, created_ts) VALUES (?, ?, ?, ?)",
                    (sender, sender_device, txn_id, now_ms),
                    conn=conn,
                )
                if not messages:
                    return 0
                pos = await self.streams.advance(conn, "to_device")
                for user_id, device_id, content in messages:
                    await self.db.execute(
                        "INSERT INTO to_device_messages (stream_pos, user_id, device_id, sender, type, content) "
                        "VALUES (?, ?, ?, ?, ?, ?)",
                        (pos, user_id, device_id, sender, event_type, json.dumps(content)),
                        conn=conn,
                    )
                return pos
        except IntegrityError:
            return None

    async def pending(self, user_id: str, device_id: str, after: int, upto: int, limit: int) -> list[ToDeviceRow]:
        rows = await self.db.fetch(
            "SELECT stream_pos, sender, type, content FROM to_device_messages "
            "WHERE user_id = ? AND device_id = ? AND stream_pos > ? AND stream_pos <= ? "
            "ORDER BY stream_pos, id LIMIT ?",
            (user_id, device_id, after, upto, limit),
        )
        return [
            ToDeviceRow(int(r["stream_pos"]), str(r["sender"]), str(r["type"]), json.loads(r["content"]))
            for r in rows
        ]

    async def queued_counts(self, user_id: str, sender: str) -> dict[str, tuple[int, int]]:
        """device id -> (messages queued for it, of which from ``sender``)."""
        rows = await self.db.fetch(
            "SELECT device_id, COUNT(*) AS total, "
            "SUM(CASE WHEN sender = ? THEN 1 ELSE 0 END) AS mine "
            "FROM to_device_messages WHERE user_id = ? GROUP BY device_id",
            (sender, user_id),
        )
        return {str(r["device_id"]): (int(r["total"]), int(r["mine"] or 0)) for r in rows}

    async def acknowledge(self, user_id: str, device_id: str, upto: int) -> int:
        """Delete what the device has received (positions <= ``upto``)."""
        return await self.db.execute(
            "DELETE FROM to_device_messages WHERE user_id = ? AND device_id = ? AND stream_pos <= ?",
            (user_id, device_id, upto),
        )

    async def delete_for_devices(self, user_id: str, device_ids: list[str]) -> None:
        for device_id in device_ids:
            await self.db.execute(
                "DELETE FROM to_device_messages WHERE user_id = ? AND device_id = ?", (user_id, device_id)
            )

    async def delete_txns_older_than(self, ts: int) -> int:
        return await self.db.execute("DELETE FROM to_device_txns WHERE created_ts < ?", (ts,))

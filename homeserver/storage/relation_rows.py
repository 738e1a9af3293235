"""Writing an event's ``m.relates_to`` into ``event_relations`` (migration 0072),
in the transaction that stores the event."""

from __future__ import annotations

from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from homeserver.storage.database import Database

MAX_ID = 255


def relation_of(pdu: dict[str, Any]) -> tuple[str, str] | None:
    """(parent event id, rel_type) of an event that relates to another, else None."""
    content = pdu.get("content")
    relates = content.get("m.relates_to") if isinstance(content, dict) else None
    if not isinstance(relates, dict):
        return None
    parent, rel_type = relates.get("event_id"), relates.get("rel_type")
    if not isinstance(parent, str) or not isinstance(rel_type, str):
        return None
    if not (0 < len(parent) <= MAX_ID and 0 < len(rel_type) <= MAX_ID):
        return None
    return parent, rel_type


async def record_relation(db: Database, conn: BaseDBAsyncClient, event_id: str, room_id: str, event_type: str,
                          sender: str, stream_pos: int, pdu: dict[str, Any]) -> None:
    relation = relation_of(pdu)
    if relation is None:
        return
    await db.execute(
        "INSERT INTO event_relations (event_id, room_id, relates_to, rel_type, type, sender, stream_pos)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (event_id, room_id, relation[0], relation[1], event_type, sender, stream_pos),
        conn=conn,
    )

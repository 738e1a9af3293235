"""Membership events of local users in rooms this server is not in: an invite from another server,
its rejection (the leave sent back through ``send_leave``).

They go into the room's stream (so /sync shows them as for any room) without a place in its graph:
no state group, no forward extremity; the room row is created when unknown.  An invite keeps the
stripped state its inviter sent (``remote_invite_state``).
"""

from __future__ import annotations

import json
from typing import Any

from homeserver.storage.events import EventRepository, StoredEvent

JsonDict = dict[str, Any]


class RemoteMembershipRepository:
    def __init__(self, events: EventRepository) -> None:
        self.events = events
        self.db = events.db

    async def store(self, room_id: str, room_version: str, event_id: str, pdu: JsonDict, now_ms: int,
                    invite_state: list[JsonDict] | None = None) -> int:
        """Store the member event; its stream position."""
        user_id = str(pdu["state_key"])
        membership = str(pdu["content"]["membership"])
        async with self.events.write(room_id, 1) as writer:
            head = await writer.lock_room()
            if head is None:
                await writer.create_room(room_version, str(pdu["sender"]), False, now_ms)
            pos = writer.positions[0]
            await writer.insert_event(StoredEvent(
                stream_pos=pos, event_id=event_id, room_id=room_id, type="m.room.member", state_key=user_id,
                sender=str(pdu["sender"]), membership=membership, pdu=pdu))
            await writer.set_membership(user_id, membership, event_id, pos, None)
            if invite_state is not None:
                await self.db.execute(
                    self.db.upsert_sql("remote_invite_state", ["event_id"], ["event_id", "room_id", "state"]),
                    (event_id, room_id, json.dumps(invite_state)), conn=writer.conn)
        return pos

    async def invite_state(self, event_ids: list[str]) -> dict[str, list[JsonDict]]:
        if not event_ids:
            return {}
        marks = ", ".join("?" for _ in event_ids)
        rows = await self.db.fetch(f"SELECT event_id, state FROM remote_invite_state WHERE event_id IN ({marks})",
                                   event_ids)
        return {str(r["event_id"]): json.loads(r["state"]) for r in rows}

"""The deprecated v1 sync APIs that clients and SyTest still call — ``GET /events``,
``GET /initialSync`` and ``GET /rooms/{roomId}/initialSync`` — as thin adapters
that reshape what :class:`SyncService` builds (spec, "Legacy /events and
/initialSync").  No second source of events: the same visibility, filters and
tokens as ``/sync``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import parse_room_id
from homeserver.services.sync import SyncService
from homeserver.services.sync_api import SyncToken
from homeserver.services.sync_filter import MAX_TIMELINE_LIMIT, RoomEventFilter

JsonDict = dict[str, Any]

DEFAULT_INITIAL_LIMIT = 10
# /events delivers every event since ``from``; a sync batch this large rarely limits.
EVENTS_BATCH = MAX_TIMELINE_LIMIT


def _with_room(events: list[JsonDict], room_id: str) -> list[JsonDict]:
    return [_v1({**e, "room_id": room_id}) for e in events]


def _v1(event: JsonDict) -> JsonDict:
    """The v1 event shape on top of the v3 one: ``user_id`` beside ``sender``, and in
    ``m.presence`` content the user it is about (the v1 APIs' clients read these)."""
    sender = event.get("sender")
    if not isinstance(sender, str):
        return event
    out = {**event, "user_id": sender}
    if event.get("type") == "m.presence" and isinstance(event.get("content"), dict):
        out["content"] = {**event["content"], "user_id": sender}
    return out


def _v1_all(events: list[JsonDict]) -> list[JsonDict]:
    return [_v1(e) for e in events]


def _members_presence(state: list[JsonDict], known: list[JsonDict]) -> list[JsonDict]:
    """Presence of the room's joined members: what /sync had, ``offline`` for the rest."""
    out = _v1_all(known)
    have = {e.get("sender") for e in out}
    for event in state:
        member = event.get("state_key")
        if (event.get("type") == "m.room.member" and isinstance(member, str) and member not in have
                and (event.get("content") or {}).get("membership") == "join"):
            out.append(_v1({"type": "m.presence", "sender": member, "content": {"presence": "offline"}}))
            have.add(member)
    return out


def _state_after(room: JsonDict) -> list[JsonDict]:
    """State at the end of a sync room section: its state, then the timeline's state events."""
    state: dict[tuple[str, str], JsonDict] = {}
    for event in [*room.get("state", {}).get("events", []), *room.get("timeline", {}).get("events", [])]:
        if "state_key" in event:
            state[(event["type"], event["state_key"])] = event
    return list(state.values())


class LegacySyncService:
    def __init__(self, sync: SyncService,
                 published: Callable[[str], Awaitable[bool]] | None = None,
                 reader: Any = None) -> None:
        self.sync = sync
        # ``async (room_id) -> listed in the public room directory?`` (v1 ``visibility``).
        self.published = published
        # For non-members of world-readable rooms: anything with the MessageService's
        # ``messages(...)`` and a ``rooms.get_state(user_id, room_id)``.
        self.reader = reader

    async def current_token(self) -> str:
        return SyncToken.from_mapping(await self.sync.streams.current_all()).encode()

    async def events(
        self, user_id: str, device_id: str, from_token: str | None, timeout_ms: int, room_id: str | None
    ) -> JsonDict:
        """GET /events: everything visible to the user after ``from`` (or from now)."""
        start = from_token or await self.current_token()
        room_filter: JsonDict = {"timeline": {"limit": EVENTS_BATCH}}
        if room_id is not None:
            parse_room_id(room_id)
            room_filter["rooms"] = [room_id]
        body = await self.sync.sync(
            user_id, device_id, start, timeout_ms, json.dumps({"room": room_filter}), False, None
        )
        chunk: list[JsonDict] = []
        rooms = body["rooms"]
        for section in ("join", "leave"):
            for rid, room in rooms[section].items():
                chunk += _with_room(room.get("timeline", {}).get("events", []), rid)
                chunk += _with_room(room.get("ephemeral", {}).get("events", []), rid)
                chunk += _with_room(room.get("account_data", {}).get("events", []), rid)
        for rid, room in rooms["invite"].items():
            for event in room.get("invite_state", {}).get("events", []):
                if event.get("type") == "m.room.member" and event.get("state_key") == user_id:
                    chunk.append({**event, "room_id": rid})
        if room_id is None:
            chunk += _v1_all(body["presence"]["events"])
            chunk += body["account_data"]["events"]
        return {"start": start, "end": body["next_batch"], "chunk": chunk}

    async def initial_sync(self, user_id: str, device_id: str, limit: int | None, archived: bool) -> JsonDict:
        """GET /initialSync"""
        room_filter: JsonDict = {
            "timeline": {"limit": DEFAULT_INITIAL_LIMIT if limit is None else limit},
            "include_leave": archived,
        }
        body = await self.sync.sync(user_id, device_id, None, 0, json.dumps({"room": room_filter}), False, None)
        rooms: list[JsonDict] = []
        receipts: list[JsonDict] = []
        for membership, section in (("join", "join"), ("leave", "leave")):
            for rid, room in body["rooms"][section].items():
                joined = self._room(rid, membership, room, body["next_batch"])
                if self.published is not None:
                    joined["visibility"] = "public" if await self.published(rid) else "private"
                rooms.append(joined)
                receipts += [{**e, "room_id": rid} for e in room.get("ephemeral", {}).get("events", [])
                             if e.get("type") == "m.receipt"]
        for rid, room in body["rooms"]["invite"].items():
            invite_state = room.get("invite_state", {}).get("events", [])
            me = next((e for e in invite_state if e.get("type") == "m.room.member"
                       and e.get("state_key") == user_id), None)
            entry: JsonDict = {"room_id": rid, "membership": "invite", "invite_state": invite_state}
            if me is not None:
                entry["inviter"] = me.get("sender")
            rooms.append(entry)
        return {
            "end": body["next_batch"], "rooms": rooms, "receipts": receipts,
            "presence": _v1_all(body["presence"]["events"]), "account_data": body["account_data"]["events"],
        }

    @staticmethod
    def _room(room_id: str, membership: str, room: JsonDict, end: str) -> JsonDict:
        timeline = room.get("timeline", {})
        return {
            "room_id": room_id,
            "membership": membership,
            "messages": {
                "chunk": _with_room(timeline.get("events", []), room_id),
                "start": timeline.get("prev_batch", end),
                "end": end,
            },
            "state": _with_room(_state_after(room), room_id),
            "account_data": room.get("account_data", {}).get("events", []),
        }

    async def room_initial_sync(self, user_id: str, device_id: str, room_id: str, limit: int | None) -> JsonDict:
        """GET /rooms/{roomId}/initialSync: one room, for its members (present or past)."""
        parse_room_id(room_id)
        room_filter: JsonDict = {
            "rooms": [room_id], "include_leave": True,
            "timeline": {"limit": DEFAULT_INITIAL_LIMIT if limit is None else limit},
        }
        body = await self.sync.sync(user_id, device_id, None, 0, json.dumps({"room": room_filter}), False, None)
        for membership in ("join", "leave"):
            room = body["rooms"][membership].get(room_id)
            if room is not None:
                out = self._room(room_id, membership, room, body["next_batch"])
                out["presence"] = _members_presence(out["state"], body["presence"]["events"])
                out["receipts"] = [e for e in room.get("ephemeral", {}).get("events", [])
                                   if e.get("type") == "m.receipt"]
                return out
        if self.reader is not None:
            # Not a member: a world-readable room is readable all the same (visible_range
            # refuses any other room with 403).
            state = await self.reader.rooms.get_state(user_id, room_id)
            from_filter = RoomEventFilter()
            page = await self.reader.messages(user_id, device_id, room_id, None, None, "b",
                                              DEFAULT_INITIAL_LIMIT if limit is None else limit, from_filter)
            chunk = list(reversed(page["chunk"]))
            return {
                "room_id": room_id, "membership": "leave", "state": _with_room(state, room_id),
                "messages": {"chunk": _with_room(chunk, room_id), "start": page.get("end", page["start"]),
                             "end": body["next_batch"]},
                "presence": [], "receipts": [], "account_data": [],
            }
        raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of this room")

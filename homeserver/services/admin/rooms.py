"""Server administration of rooms: list/search, details, members, state, block, delete.

Deleting a room (``DELETE /_synapse/admin/v1/rooms/{roomId}``) makes every
local member leave, then (``purge``, the default) deletes its events,
state and the media referenced only from it; ``block`` refuses every later
join or invite.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from common.errors import MatrixError, bad_param, forbidden, not_found
from common.identifiers import parse_room_id
from homeserver.services.admin.params import int_param
from homeserver.services.clock import Clock
from homeserver.services.events import EventSpec
from homeserver.services.membership import MembershipService
from homeserver.services.rooms import NO_UPPER_BOUND, RoomService
from homeserver.services.sync_filter import MAX_PAGINATION_LIMIT, decode_position_token, encode_position_token
from homeserver.storage.admin_rooms import AdminRoomRepository, RoomSummaryRow
from homeserver.storage.admin_users import AdminUserRepository
from homeserver.storage.events import StoredEvent
from homeserver.storage.moderation import ModerationRepository

Json = dict[str, Any]

_ORDER_KEYS = {
    "name": lambda r: (r["name"] or "").lower(),
    "canonical_alias": lambda r: r["canonical_alias"] or "",
    "joined_members": lambda r: r["joined_members"],
    "joined_local_members": lambda r: r["joined_local_members"],
    "version": lambda r: r["version"],
    "creator": lambda r: r["creator"],
    "encryption": lambda r: r["encryption"] or "",
    "federatable": lambda r: r["federatable"],
    "public": lambda r: r["public"],
    "join_rules": lambda r: r["join_rules"] or "",
    "guest_access": lambda r: r["guest_access"] or "",
    "history_visibility": lambda r: r["history_visibility"] or "",
    "state_events": lambda r: r["state_events"],
}


def room_json(summary: RoomSummaryRow, state: list[StoredEvent], server_name: str) -> Json:
    content = {(e.type, e.state_key or ""): e.content for e in state}

    def field(event_type: str, key: str) -> Any:
        return content.get((event_type, ""), {}).get(key)

    joined = [e.state_key for e in state if e.type == "m.room.member" and e.membership == "join"]
    local = [u for u in joined if u and u.endswith(":" + server_name)]
    create = content.get(("m.room.create", ""), {})
    return {
        "room_id": summary.room_id,
        "name": field("m.room.name", "name"),
        "topic": field("m.room.topic", "topic"),
        "avatar": field("m.room.avatar", "url"),
        "canonical_alias": field("m.room.canonical_alias", "alias"),
        "joined_members": len(joined),
        "joined_local_members": len(local),
        "version": summary.room_version,
        "creator": summary.creator,
        "encryption": field("m.room.encryption", "algorithm"),
        "federatable": create.get("m.federate", True) is not False,
        "public": field("m.room.join_rules", "join_rule") == "public",
        "join_rules": field("m.room.join_rules", "join_rule"),
        "guest_access": field("m.room.guest_access", "guest_access"),
        "history_visibility": field("m.room.history_visibility", "history_visibility"),
        "state_events": len(state),
        "room_type": create.get("type"),
        "is_direct": summary.is_direct,
    }


class AdminRoomService:
    def __init__(self, server_name: str, repo: AdminRoomRepository, rooms: RoomService,
                 membership: MembershipService, moderation: ModerationRepository,
                 admin_users: AdminUserRepository, clock: Clock) -> None:
        self.server_name = server_name
        self.repo = repo
        self.rooms = rooms
        self.membership = membership
        self.moderation = moderation
        self.admin_users = admin_users
        self.clock = clock

    async def summary(self, room_id: str) -> RoomSummaryRow:
        parse_room_id(room_id)
        summary = await self.repo.room(room_id)
        if summary is None:
            raise not_found("Room not found")
        return summary

    async def list_rooms(self, params: Mapping[str, str]) -> Json:
        offset, limit = int_param(params, "from", 0), int_param(params, "limit", 100)
        if offset < 0 or limit < 1:
            raise bad_param("from must be >= 0 and limit >= 1")
        order_by = params.get("order_by", "name")
        if order_by not in _ORDER_KEYS and order_by != "size":
            raise bad_param(f"Unknown order_by {order_by[:40]!r}")
        direction = params.get("dir", "f")
        if direction not in ("f", "b"):
            raise bad_param("dir must be 'f' or 'b'")
        summaries = await self.repo.rooms()
        states = await self.rooms.events.current_state([s.room_id for s in summaries])
        rooms = [room_json(s, states[s.room_id], self.server_name) for s in summaries]
        term = (params.get("search_term") or "").lower()
        if term:
            rooms = [r for r in rooms if term in (r["name"] or "").lower() or term in r["room_id"].lower()
                     or term in (r["canonical_alias"] or "").lower()]
        key = _ORDER_KEYS["joined_members" if order_by == "size" else order_by]
        largest_first = order_by in ("size", "joined_members")
        rooms.sort(key=key, reverse=largest_first != (direction == "b"))
        page = rooms[offset:offset + limit]
        body: Json = {"rooms": page, "offset": offset, "total_rooms": len(rooms)}
        if offset + len(page) < len(rooms):
            body["next_batch"] = offset + len(page)
        if offset > 0:
            body["prev_batch"] = max(0, offset - limit)
        return body

    async def details(self, room_id: str) -> Json:
        summary = await self.summary(room_id)
        state = (await self.rooms.events.current_state([room_id]))[room_id]
        body = room_json(summary, state, self.server_name)
        body["blocked"] = await self.moderation.room_blocker(room_id) is not None
        return body

    async def members(self, room_id: str) -> Json:
        await self.summary(room_id)
        joined = await self.rooms.repo.joined_user_ids(room_id)
        return {"members": joined, "total": len(joined)}

    async def state(self, room_id: str) -> Json:
        await self.summary(room_id)
        events = await self.rooms.room_state_events(room_id)
        return {"state": await self.rooms.formatter.format(events)}

    async def messages(self, room_id: str, params: Mapping[str, str]) -> Json:
        """GET /_synapse/admin/v1/rooms/{roomId}/messages: the timeline without membership checks
        (message contents are end-to-end encrypted for the server too)."""
        await self.summary(room_id)
        direction = params.get("dir", "f")
        if direction not in ("f", "b"):
            raise bad_param("dir must be 'f' or 'b'")
        limit = max(1, min(int_param(params, "limit", 10), MAX_PAGINATION_LIMIT))
        try:
            from_pos = decode_position_token(params["from"]) if "from" in params else (
                NO_UPPER_BOUND if direction == "b" else 0)
            to_pos = decode_position_token(params["to"]) if "to" in params else None
        except MatrixError:
            raise
        except Exception:
            raise bad_param("Invalid pagination token") from None
        events = await self.rooms.events.paginate(room_id, from_pos, direction, limit, to_pos, 0, NO_UPPER_BOUND)
        body: Json = {"chunk": await self.rooms.formatter.format(events),
                      "start": params.get("from") or encode_position_token(
                          0 if direction == "f" else (events[0].stream_pos if events else 0))}
        if events and len(events) >= limit:
            last = events[-1].stream_pos
            body["end"] = encode_position_token(last - 1 if direction == "b" else last)
        return body

    async def block_status(self, room_id: str) -> Json:
        parse_room_id(room_id)
        blocker = await self.moderation.room_blocker(room_id)
        return {"block": True, "user_id": blocker} if blocker else {"block": False}

    async def set_block(self, admin: str, room_id: str, block: Any) -> Json:
        parse_room_id(room_id)
        if not isinstance(block, bool):
            raise bad_param("block must be a boolean")
        if block:
            await self.moderation.block_room(room_id, admin, self.clock.now_ms())
        else:
            await self.moderation.unblock_room(room_id)
        await self.admin_users.audit(admin, "block_room", room_id, {"block": block}, self.clock.now_ms())
        return {"block": block}

    async def check_not_blocked(self, room_id: str) -> None:
        if await self.moderation.room_blocker(room_id) is not None:
            raise forbidden("This room has been blocked on this server")

    async def delete(self, admin: str, room_id: str, body: Mapping[str, Any]) -> Json:
        block, purge = body.get("block", False), body.get("purge", True)
        if not isinstance(block, bool) or not isinstance(purge, bool):
            raise bad_param("block and purge must be booleans")
        if body.get("new_room_user_id") is not None:
            raise bad_param("new_room_user_id is not supported")
        parse_room_id(room_id)
        if block:
            await self.moderation.block_room(room_id, admin, self.clock.now_ms())
        kicked: list[str] = []
        failed: list[str] = []
        if await self.repo.room(room_id) is not None:
            members = await self.rooms.repo.members(room_id, ("join", "invite"))
            for member in members:
                if not member.user_id.endswith(":" + self.server_name):
                    continue
                spec = EventSpec("m.room.member", member.user_id, {"membership": "leave"}, member.user_id)
                try:
                    await self.rooms.sender.send(room_id, [spec])
                    kicked.append(member.user_id)
                except Exception:
                    failed.append(member.user_id)
            if purge and not failed:
                await self.membership.purge(room_id)
        elif not block:
            raise not_found("Room not found")
        await self.admin_users.audit(admin, "delete_room", room_id, {"block": block, "purge": purge},
                                     self.clock.now_ms())
        return {"kicked_users": kicked, "failed_to_kick_users": failed, "local_aliases": [],
                "new_room_id": None}



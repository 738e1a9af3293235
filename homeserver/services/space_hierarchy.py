"""The space hierarchy (client-server API, "Spaces": ``GET /rooms/{roomId}/hierarchy``).

A space's children are its ``m.space.child`` state events with a non-empty
``via``; the walk is breadth first from the requested room, each room once.
A room is listed when the user may see it: they are joined or invited, or
anyone may peek or join it (``world_readable`` history, a ``public`` or
knock join rule), or its ``restricted`` rule allows a room they are joined
to.  Rooms this server does not know (Parley has no federation) are not
listed; their ``m.space.child`` event still shows in the parent's
``children_state``.  Pages are offsets into the walk, bound to the
``max_depth`` and ``suggested_only`` they were made with.
"""

from __future__ import annotations

from collections import deque
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.events import stripped_state
from homeserver.services.room_directory import RoomDirectoryService
from homeserver.services.rooms import RoomService, check_room_id

JsonDict = dict[str, Any]

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_DEPTH = 50
MAX_ROOMS = 1000
OPEN_RULES = ("public", "knock")
RESTRICTED_RULES = ("restricted", "knock_restricted")


def _int_param(raw: str | None, name: str, default: int, maximum: int, minimum: int = 0) -> int:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 9 or int(raw) < minimum:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must be an integer of at least {minimum}")
    return min(int(raw), maximum)


class SpaceHierarchyService:
    def __init__(self, rooms: RoomService, directory: RoomDirectoryService) -> None:
        self.rooms = rooms
        self.directory = directory

    async def hierarchy(self, user_id: str, room_id: str, query: dict[str, str]) -> JsonDict:
        check_room_id(room_id)
        limit = _int_param(query.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT, minimum=1)
        max_depth = _int_param(query.get("max_depth"), "max_depth", MAX_DEPTH, MAX_DEPTH)
        suggested = query.get("suggested_only", "false")
        if suggested not in ("true", "false"):
            raise MatrixError(400, Codes.INVALID_PARAM, "suggested_only must be true or false")
        shape = f"{max_depth}.{suggested}"
        offset = 0
        if query.get("from") is not None:
            token = query["from"]
            head, _, rest = token.partition("_")
            if rest != shape or not head.isascii() or not head.isdigit() or len(head) > 9:
                raise MatrixError(400, Codes.INVALID_PARAM, "Unknown pagination token, or one made with "
                                  "other max_depth or suggested_only")
            offset = int(head)
        joined = set(await self.rooms.repo.joined_room_ids(user_id))
        if not await self._may_see(user_id, room_id, joined):
            raise MatrixError(403, Codes.FORBIDDEN, "You cannot see this room")
        walk = await self._walk(user_id, room_id, joined, max_depth, suggested == "true")
        page = walk[offset:offset + limit]
        out: JsonDict = {"rooms": page}
        if offset + limit < len(walk):
            out["next_batch"] = f"{offset + limit}_{shape}"
        return out

    async def _walk(self, user_id: str, root: str, joined: set[str], max_depth: int,
                    suggested_only: bool) -> list[JsonDict]:
        queue: deque[tuple[str, int]] = deque([(root, 0)])
        seen = {root}
        out: list[JsonDict] = []
        while queue and len(out) < MAX_ROOMS:
            room_id, depth = queue.popleft()
            if room_id != root and not await self._may_see(user_id, room_id, joined):
                continue
            summaries = await self.directory.summaries([room_id])
            if not summaries:
                continue  # unknown here, or purged
            entry = summaries[0]
            children = await self._children(room_id, suggested_only)
            entry["children_state"] = [stripped_state(e) | {"origin_server_ts": e.get("origin_server_ts", 0)}
                                       for e in children]
            out.append(entry)
            if depth >= max_depth:
                continue
            for child in children:
                child_id = child["state_key"]
                if child_id not in seen:
                    seen.add(child_id)
                    queue.append((child_id, depth + 1))
        return out

    async def _children(self, room_id: str, suggested_only: bool) -> list[JsonDict]:
        state = (await self.rooms.events.current_state([room_id], ["m.space.child"]))[room_id]
        children = []
        for event in state:
            content = event.content
            via = content.get("via")
            if not isinstance(via, list) or not via or not event.state_key:
                continue  # spec: a child without via is not a child
            if suggested_only and content.get("suggested") is not True:
                continue
            children.append(event.pdu)
        return sorted(children, key=lambda p: (_order_key(p), p.get("origin_server_ts", 0), p["state_key"]))

    async def _may_see(self, user_id: str, room_id: str, joined: set[str]) -> bool:
        membership = await self.rooms.repo.membership(room_id, user_id)
        if membership is not None and membership.membership in ("join", "invite"):
            return True
        state = {e.type: e.content for e in (await self.rooms.events.current_state(
            [room_id], ["m.room.join_rules", "m.room.history_visibility"]))[room_id]}
        if state.get("m.room.history_visibility", {}).get("history_visibility") == "world_readable":
            return True
        rules = state.get("m.room.join_rules", {})
        rule = rules.get("join_rule")
        if rule in OPEN_RULES:
            return True
        if rule in RESTRICTED_RULES:
            allow = rules.get("allow")
            allowed = {a.get("room_id") for a in allow if isinstance(a, dict)} if isinstance(allow, list) else set()
            return bool(allowed & joined)
        return False


def _order_key(pdu: JsonDict) -> tuple[int, str]:
    """Spec ("Ordering of children within a space"): ``order`` strings first, lexicographically."""
    order = pdu.get("content", {}).get("order")
    valid = isinstance(order, str) and 0 < len(order) <= 50 and all(0x20 <= ord(c) <= 0x7E for c in order)
    return (0, str(order)) if valid else (1, "")

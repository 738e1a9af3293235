"""Relationships between events (client-server API, "Relationships", "Threading",
and "Room timestamp to event").

* ``/relations/{eventId}[/{relType}[/{eventType}]]``: the events relating to a
  parent the user may see, within the history they may see, newest first by
  default, paged with ``/messages``-style position tokens; ``recurse`` (v1.10)
  follows relations of relations up to ``MAX_RECURSION`` levels.
* ``/threads``: thread roots by latest reply, each with its ``m.thread``
  summary (latest reply, count, whether the user took part) in ``unsigned``.
* ``/timestamp_to_event``: the visible event closest to a time.

Encrypted events keep ``m.relates_to`` in clear (spec), so they relate too;
an ``eventType`` filter compares the type as stored (``m.room.encrypted``).
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_event_id
from homeserver.services.messages import MessageService
from homeserver.services.rooms import NO_UPPER_BOUND, RoomService, check_room_id
from homeserver.services.sync_filter import decode_position_token, encode_position_token
from homeserver.storage.events import StoredEvent
from homeserver.storage.relations import RelationRepository

JsonDict = dict[str, Any]

DEFAULT_LIMIT = 5
MAX_LIMIT = 50
MAX_RECURSION = 3


def _int(raw: str | None, name: str, default: int, maximum: int) -> int:
    if raw is None:
        return default
    if not raw.isascii() or not raw.isdigit() or len(raw) > 17:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must be a non-negative integer")
    return min(int(raw), maximum)


def _direction(raw: str | None, default: str) -> str:
    value = raw or default
    if value not in ("b", "f"):
        raise MatrixError(400, Codes.INVALID_PARAM, "dir must be b or f")
    return value


class RelationService:
    def __init__(self, rooms: RoomService, messages: MessageService, repo: RelationRepository) -> None:
        self.rooms = rooms
        self.messages = messages
        self.repo = repo

    async def _visible_parent(self, user_id: str, room_id: str, event_id: str) -> tuple[int, int]:
        check_room_id(room_id)
        not_found = MatrixError(404, Codes.NOT_FOUND, "Event not found")
        if not is_valid_event_id(event_id):
            raise not_found
        try:
            lower, upper = await self.rooms.visible_range(user_id, room_id)
        except MatrixError:
            raise not_found from None
        parent = await self.rooms.events.get(event_id)
        if parent is None or parent.room_id != room_id or not lower < parent.stream_pos <= upper:
            raise not_found
        return lower, upper

    async def relations(self, user_id: str, device_id: str, room_id: str, event_id: str,
                        rel_type: str | None, event_type: str | None, query: dict[str, str]) -> JsonDict:
        """GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]"""
        lower, upper = await self._visible_parent(user_id, room_id, event_id)
        limit = max(1, _int(query.get("limit"), "limit", DEFAULT_LIMIT, MAX_LIMIT))
        direction = _direction(query.get("dir"), "b")
        recurse = query.get("recurse", "false")
        if recurse not in ("true", "false"):
            raise MatrixError(400, Codes.INVALID_PARAM, "recurse must be true or false")
        low, high = lower, upper
        start = query.get("from")
        if start is not None:
            pos = decode_position_token(start)
            if direction == "b":
                high = min(high, pos)
            else:
                low = max(low, pos)
        if query.get("to") is not None:
            pos = decode_position_token(query["to"])
            if direction == "b":
                low = max(low, pos)
            else:
                high = min(high, pos)
        parents, depth = [event_id], 0
        found: list[StoredEvent] = []
        while parents and depth < (MAX_RECURSION if recurse == "true" else 1):
            level = await self.repo.children(room_id, parents, rel_type, event_type, low, high, direction,
                                             limit + 1)
            depth += 1
            found += level
            parents = [e.event_id for e in level]
        found.sort(key=lambda e: e.stream_pos, reverse=direction == "b")
        page = found[:limit]
        body: JsonDict = {"chunk": await self.rooms.formatter.format(
            await self.messages.unignored(user_id, page), user_id, device_id)}
        if len(found) > limit:
            last = page[-1].stream_pos
            body["next_batch"] = encode_position_token(last - 1 if direction == "b" else last)
        if start is not None:
            body["prev_batch"] = start
        if recurse == "true":
            body["recursion_depth"] = depth
        return body

    async def threads(self, user_id: str, device_id: str, room_id: str, query: dict[str, str]) -> JsonDict:
        """GET /_matrix/client/v1/rooms/{roomId}/threads"""
        check_room_id(room_id)
        include = query.get("include", "all")
        if include not in ("all", "participated"):
            raise MatrixError(400, Codes.INVALID_PARAM, "include must be all or participated")
        limit = max(1, _int(query.get("limit"), "limit", DEFAULT_LIMIT * 2, MAX_LIMIT))
        before = NO_UPPER_BOUND
        if query.get("from") is not None:
            before = decode_position_token(query["from"])
        lower, upper = await self.rooms.visible_range(user_id, room_id)
        rows = await self.repo.thread_roots(room_id, lower, upper, before, limit + 1,
                                            user_id if include == "participated" else None)
        roots = await self.rooms.events.get_many([r[0] for r in rows[:limit]])
        visible = [roots[r[0]] for r in rows[:limit]
                   if r[0] in roots and lower < roots[r[0]].stream_pos <= upper and roots[r[0]].redacted_by is None]
        mine = await self.repo.participated(room_id, [e.event_id for e in visible], user_id)
        summaries = {r[0]: r for r in rows}
        chunk = await self.rooms.formatter.format(await self.messages.unignored(user_id, visible), user_id, device_id)
        latest_events = await self._latest_replies(room_id, [summaries[e["event_id"]] for e in chunk])
        for event in chunk:
            root, _, count = summaries[event["event_id"]]
            reply = latest_events.get(root)
            thread: JsonDict = {"count": count, "current_user_participated":
                                root in mine or event.get("sender") == user_id}
            if reply is not None:
                thread["latest_event"] = (await self.rooms.formatter.format([reply], user_id, device_id))[0]
            event.setdefault("unsigned", {}).setdefault("m.relations", {})["m.thread"] = thread
        body: JsonDict = {"chunk": chunk}
        if len(rows) > limit:
            body["next_batch"] = encode_position_token(rows[limit - 1][1])
        return body

    async def _latest_replies(self, room_id: str, rows: list[tuple[str, int, int]]) -> dict[str, StoredEvent]:
        """The latest reply of each thread (at the position the thread list found)."""
        out: dict[str, StoredEvent] = {}
        for root, latest_pos, _ in rows:
            replies = await self.repo.children(room_id, [root], "m.thread", None, latest_pos - 1, latest_pos, "b", 1)
            if replies:
                out[root] = replies[0]
        return out

    async def timestamp_to_event(self, user_id: str, room_id: str, query: dict[str, str]) -> JsonDict:
        """GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event"""
        check_room_id(room_id)
        raw = query.get("ts")
        if raw is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "ts is required")
        ts = _int(raw, "ts", 0, 2**53)
        direction = query.get("dir")
        if direction is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "dir is required")
        direction = _direction(direction, "f")
        lower, upper = await self.rooms.visible_range(user_id, room_id)
        event = await self.repo.closest_by_ts(room_id, ts, direction, lower, upper)
        if event is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No event found in that direction from that time")
        return {"event_id": event.event_id, "origin_server_ts": int(event.pdu["origin_server_ts"])}

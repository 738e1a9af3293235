"""Account data: per-user key/value JSON, global or per room, and room tags.

Tags live in the room account data of type ``m.tag`` as
``{"tags": {"m.favourite": {"order": 0.5}, ...}}``; ``m.favourite`` carries
the earlier app's favourites.  ``m.fully_read`` is managed by the server
(set through ``/read_markers``), so clients cannot write it directly.

Every write moves the "account_data" stream and wakes the user's own
long-polls; :class:`AccountDataContributor` adds the data to /sync.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import MAX_ID_LENGTH, parse_room_id
from homeserver.notifier import Notifier
from homeserver.services.filters import apply_event_filter, room_event_allowed, room_section_filter
from homeserver.services.sync_api import SyncContext, room_section
from homeserver.storage.account_data import GLOBAL, AccountDataRepository, AccountDataRow

JsonDict = dict[str, Any]

TAG_TYPE = "m.tag"
FULLY_READ_TYPE = "m.fully_read"
DIRECT_TYPE = "m.direct"
# Types only the server writes (spec: 405 M_BAD_JSON when a client tries).
SERVER_MANAGED = frozenset({FULLY_READ_TYPE, "m.push_rules"})
MAX_TAG_LENGTH = 255
MAX_TAGS_PER_ROOM = 100
# Global account data remembered for /sync builds (least recently used first out).
_KNOWN_MAX = 50_000


def check_type(data_type: str) -> str:
    if (
        not data_type
        or len(data_type) > MAX_ID_LENGTH
        or any(ord(c) < 0x21 or ord(c) == 0x7F for c in data_type)
    ):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid account data type")
    return data_type


def check_room_id(room_id: str) -> str:
    parse_room_id(room_id)  # M_INVALID_PARAM, as the spec asks for a malformed room id
    return room_id


def _check_content(data_type: str, content: Any) -> JsonDict:
    if not isinstance(content, dict):
        raise MatrixError(400, Codes.BAD_JSON, "Content must be a JSON object")
    if data_type == DIRECT_TYPE:
        for user_id, rooms in content.items():
            if not isinstance(rooms, list) or not all(isinstance(r, str) for r in rooms):
                raise MatrixError(
                    400, Codes.BAD_JSON, f"m.direct: {user_id[:80]!r} must map to a list of room ids"
                )
    if data_type == TAG_TYPE:
        tags = content.get("tags")
        if not isinstance(tags, dict) or not all(isinstance(t, dict) for t in tags.values()):
            raise MatrixError(400, Codes.BAD_JSON, "m.tag content must be {\"tags\": {tag: {...}}}")
    return content


def _check_tag(tag: str) -> str:
    if not tag or len(tag.encode("utf-8")) > MAX_TAG_LENGTH or any(ord(c) < 0x20 for c in tag):
        raise MatrixError(400, Codes.INVALID_PARAM, f"A tag must be 1 to {MAX_TAG_LENGTH} bytes")
    return tag


def _check_tag_body(body: Any) -> JsonDict:
    if not isinstance(body, dict):
        raise MatrixError(400, Codes.BAD_JSON, "The tag content must be a JSON object")
    if "order" in body:
        order = body["order"]
        if isinstance(order, bool) or not isinstance(order, (int, float)) or not math.isfinite(order):
            raise MatrixError(400, Codes.BAD_JSON, "order must be a number")
    return body


def _forbid_other(requester_id: str, user_id: str, verb: str) -> None:
    if requester_id != user_id:
        raise MatrixError(403, Codes.FORBIDDEN, f"Cannot {verb} account data for other users")


class AccountDataService:
    def __init__(self, repo: AccountDataRepository, notifier: Notifier) -> None:
        self.repo = repo
        self.notifier = notifier
        # (user, type) -> (account-data position, content) as a /sync build read it.
        self._known: OrderedDict[tuple[str, str], tuple[int, JsonDict | None]] = OrderedDict()

    async def _written(self, user_id: str, position: int | None = None) -> None:
        await self.notifier.notify([user_id], "account_data", position)

    # ------------------------------------------------------------- global
    async def put_global(self, requester_id: str, user_id: str, data_type: str, content: Any) -> None:
        _forbid_other(requester_id, user_id, "add")
        check_type(data_type)
        if data_type in SERVER_MANAGED:
            raise MatrixError(405, Codes.BAD_JSON, f"Cannot set {data_type} through this API")
        position = await self.repo.put(user_id, GLOBAL, data_type, _check_content(data_type, content))
        await self._written(user_id, position)

    async def get_global(self, requester_id: str, user_id: str, data_type: str) -> JsonDict:
        _forbid_other(requester_id, user_id, "get")
        check_type(data_type)
        content = await self.repo.get(user_id, GLOBAL, data_type)
        if content is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Account data not found")
        return content

    # ------------------------------------------------------------ per room
    async def put_room(
        self, requester_id: str, user_id: str, room_id: str, data_type: str, content: Any
    ) -> None:
        _forbid_other(requester_id, user_id, "add")
        check_room_id(room_id)
        check_type(data_type)
        if data_type in SERVER_MANAGED:
            raise MatrixError(405, Codes.BAD_JSON, f"Cannot set {data_type} through this API")
        position = await self.repo.put(user_id, room_id, data_type, _check_content(data_type, content))
        await self._written(user_id, position)

    async def get_room(
        self, requester_id: str, user_id: str, room_id: str, data_type: str
    ) -> JsonDict:
        _forbid_other(requester_id, user_id, "get")
        check_room_id(room_id)
        check_type(data_type)
        content = await self.repo.get(user_id, room_id, data_type)
        if content is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Room account data not found")
        return content

    async def global_content(self, user_id: str, data_type: str, at: int | None = None) -> JsonDict | None:
        """The user's global account data of a type (callers must not change it).

        ``at``: the account-data stream position the caller (a /sync build) read
        before; what was read at the same position is answered from memory, as
        any change since, on any instance, moved the stream past it."""
        key = (user_id, data_type)
        if at is not None:
            known = self._known.get(key)
            if known is not None and known[0] == at:
                self._known.move_to_end(key)
                return known[1]
        content = await self.repo.get(user_id, GLOBAL, data_type)
        if at is not None:
            self._known[key] = (at, content)
            self._known.move_to_end(key)
            if len(self._known) > _KNOWN_MAX:
                self._known.popitem(last=False)
        return content

    async def ignored_users(self, user_id: str, at: int | None = None) -> set[str]:
        """The users ``user_id`` ignores (``m.ignored_user_list``); ``at``: see :meth:`global_content`."""
        content = await self.global_content(user_id, "m.ignored_user_list", at)
        ignored = (content or {}).get("ignored_users")
        return {u for u in ignored if isinstance(u, str)} if isinstance(ignored, dict) else set()

    async def set_fully_read(self, user_id: str, room_id: str, event_id: str) -> None:
        """The server-managed read marker (``/read_markers``); the caller checked the event."""
        position = await self.repo.put(user_id, room_id, FULLY_READ_TYPE, {"event_id": event_id})
        await self._written(user_id, position)

    # --------------------------------------------------------------- tags
    async def tags(self, requester_id: str, user_id: str, room_id: str) -> JsonDict:
        _forbid_other(requester_id, user_id, "get")
        check_room_id(room_id)
        content = await self.repo.get(user_id, room_id, TAG_TYPE)
        tags = (content or {}).get("tags")
        return {"tags": tags if isinstance(tags, dict) else {}}

    async def put_tag(
        self, requester_id: str, user_id: str, room_id: str, tag: str, body: Any
    ) -> None:
        _forbid_other(requester_id, user_id, "add")
        check_room_id(room_id)
        _check_tag(tag)
        value = _check_tag_body(body)

        def change(old: JsonDict | None) -> JsonDict | None:
            tags = dict((old or {}).get("tags") or {})
            if tags.get(tag) == value:
                return None
            if tag not in tags and len(tags) >= MAX_TAGS_PER_ROOM:
                raise MatrixError(
                    400, Codes.INVALID_PARAM, f"At most {MAX_TAGS_PER_ROOM} tags per room"
                )
            tags[tag] = value
            return {**(old or {}), "tags": tags}

        if (position := await self.repo.update(user_id, room_id, TAG_TYPE, change)) is not None:
            await self._written(user_id, position)

    async def delete_tag(self, requester_id: str, user_id: str, room_id: str, tag: str) -> None:
        _forbid_other(requester_id, user_id, "delete")
        check_room_id(room_id)
        _check_tag(tag)

        def change(old: JsonDict | None) -> JsonDict | None:
            tags = dict((old or {}).get("tags") or {})
            if tag not in tags:
                return None
            del tags[tag]
            return {**(old or {}), "tags": tags}

        if (position := await self.repo.update(user_id, room_id, TAG_TYPE, change)) is not None:
            await self._written(user_id, position)


def _event(row: AccountDataRow) -> JsonDict:
    return {"type": row.data_type, "content": row.content}


class AccountDataContributor:
    """Global ``account_data`` and ``rooms.join[r].account_data`` in /sync."""

    # A woken /sync skips this contributor unless one of these streams moved.
    sync_streams = frozenset({"account_data"})

    def __init__(self, repo: AccountDataRepository) -> None:
        self.repo = repo

    async def contribute(self, ctx: SyncContext, response: JsonDict) -> bool:
        joined = set(ctx.joined_room_ids)
        if ctx.since is None or ctx.full_state:
            rows = await self.repo.all_for_user(ctx.user_id)
            rows = [r for r in rows if r.room_id == GLOBAL or r.room_id in joined]
        else:
            since, upto = ctx.since.get("account_data"), ctx.upto.get("account_data")
            rows = await self.repo.changed(ctx.user_id, since, upto) if since < upto else []
            rows = [r for r in rows if r.room_id == GLOBAL or r.room_id in joined]
            fresh_rooms = sorted(joined & ctx.newly_joined_room_ids)
            if fresh_rooms:
                seen = {(r.room_id, r.data_type) for r in rows}
                rows += [
                    r for r in await self.repo.for_rooms(ctx.user_id, fresh_rooms)
                    if (r.room_id, r.data_type) not in seen
                ]
        global_events = [_event(r) for r in rows if r.room_id == GLOBAL]
        global_events = apply_event_filter(ctx.filter.get("account_data"), global_events)
        added = False
        if global_events:
            response.setdefault("account_data", {}).setdefault("events", []).extend(global_events)
            added = True
        per_room: dict[str, list[JsonDict]] = {}
        for row in rows:
            if row.room_id != GLOBAL:
                per_room.setdefault(row.room_id, []).append(_event(row))
        room_filter = room_section_filter(ctx.filter, "account_data")
        for room_id, events in per_room.items():
            if not room_event_allowed(ctx.filter, "account_data", room_id):
                continue
            events = apply_event_filter(room_filter, events)
            if events:
                room_section(response, room_id, "account_data").setdefault("events", []).extend(events)
                added = True
        return added

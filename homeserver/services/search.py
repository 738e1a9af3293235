"""Server-side search (client-server API, "Server Side Search": ``POST /search``).

Only what the server can read is searchable: unencrypted ``m.room.message``
bodies, room names and topics (``content.body``, ``content.name``,
``content.topic``), in rooms the user is or was in, within the history the
user may see (the same visible range as ``/messages``), without events of
ignored users.  Every word of the search term must occur (case-insensitive);
the rank is how often they occur.

Matches are gathered newest first, at most ``MAX_MATCHES`` after reading at
most ``MAX_SCANNED`` candidate events per request; ``order_by: recent`` pages
by stream position (``next_batch`` resumes below the last result), ``rank``
by offset into the ranked matches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.errors import Codes, MatrixError, bad_param
from homeserver.services.messages import MessageService
from homeserver.services.rooms import NO_UPPER_BOUND, RoomService
from homeserver.services.sync_filter import RoomEventFilter, encode_position_token
from homeserver.storage.event_search import EventSearchRepository
from homeserver.storage.events import StoredEvent

JsonDict = dict[str, Any]

KEY_TYPES = {"content.body": "m.room.message", "content.name": "m.room.name", "content.topic": "m.room.topic"}
DEFAULT_LIMIT = 10
MAX_LIMIT = 50
MAX_CONTEXT = 20
MAX_TERM = 512
MAX_MATCHES = 500
MAX_SCANNED = 5000
BATCH = 500


@dataclass(frozen=True)
class _Query:
    words: list[str]
    keys: list[str]
    event_filter: RoomEventFilter
    limit: int
    order_by: str
    before_limit: int | None
    after_limit: int
    include_profile: bool
    include_state: bool
    group_by: list[str]


def _int(value: Any, name: str, default: int, maximum: int) -> int:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise bad_param(f"{name} must be a non-negative integer")
    return min(value, maximum)


def _parse(body: JsonDict) -> _Query | None:
    categories = body.get("search_categories")
    if not isinstance(categories, dict):
        raise MatrixError(400, Codes.MISSING_PARAM, "search_categories is required")
    criteria = categories.get("room_events")
    if criteria is None:
        return None
    if not isinstance(criteria, dict):
        raise MatrixError(400, Codes.BAD_JSON, "room_events must be an object")
    term = criteria.get("search_term")
    if not isinstance(term, str) or not term.strip() or len(term) > MAX_TERM:
        raise MatrixError(400, Codes.MISSING_PARAM, f"search_term must be a non-empty string of at most {MAX_TERM}")
    keys = criteria.get("keys", list(KEY_TYPES))
    if not isinstance(keys, list) or not keys or any(k not in KEY_TYPES for k in keys):
        raise bad_param("keys must list content.body, content.name and/or content.topic")
    order_by = criteria.get("order_by", "rank")
    if order_by not in ("rank", "recent"):
        raise bad_param("order_by must be rank or recent")
    event_filter = RoomEventFilter.parse(criteria.get("filter"), "filter")
    context = criteria.get("event_context")
    if context is not None and not isinstance(context, dict):
        raise MatrixError(400, Codes.BAD_JSON, "event_context must be an object")
    include_state = criteria.get("include_state", False)
    profile = (context or {}).get("include_profile", False)
    if not isinstance(include_state, bool) or not isinstance(profile, bool):
        raise MatrixError(400, Codes.BAD_JSON, "include_state and include_profile must be booleans")
    groupings = criteria.get("groupings") or {}
    group_by = groupings.get("group_by", []) if isinstance(groupings, dict) else None
    if not isinstance(group_by, list) or any(
        not isinstance(g, dict) or g.get("key") not in ("room_id", "sender") for g in group_by
    ):
        raise bad_param("groupings.group_by must be a list of {key: room_id | sender}")
    return _Query(
        words=list(dict.fromkeys(term.lower().split())),
        keys=list(dict.fromkeys(keys)),
        event_filter=event_filter,
        limit=_int(event_filter.limit, "filter.limit", DEFAULT_LIMIT, MAX_LIMIT),
        order_by=order_by,
        before_limit=None if context is None else _int(context.get("before_limit"), "before_limit", 5, MAX_CONTEXT),
        after_limit=0 if context is None else _int(context.get("after_limit"), "after_limit", 5, MAX_CONTEXT),
        include_profile=profile,
        include_state=include_state,
        group_by=[str(g["key"]) for g in group_by],
    )


def _rank(query: _Query, event: StoredEvent) -> float:
    """Occurrences of the words in the searched key; 0 when a word is missing."""
    content = event.pdu.get("content")
    if not isinstance(content, dict):
        return 0.0
    for key in query.keys:
        if KEY_TYPES[key] != event.type:
            continue
        if event.state_key != (None if event.type == "m.room.message" else ""):
            return 0.0
        text = content.get(key.split(".", 1)[1])
        if not isinstance(text, str):
            return 0.0
        lowered = text.lower()
        counts = [lowered.count(w) for w in query.words]
        return float(sum(counts)) if all(counts) else 0.0
    return 0.0


def _needle(words: list[str]) -> str | None:
    """The longest ASCII word (a safe SQL pre-filter on both backends), if any."""
    ascii_words = [w for w in words if w.isascii() and w.isalnum()]
    return max(ascii_words, key=len) if ascii_words else None


def _decode_batch(token: str | None, order_by: str) -> int:
    if token is None:
        return NO_UPPER_BOUND if order_by == "recent" else 0
    prefix = "p" if order_by == "recent" else "o"
    digits = token[1:]
    if not token.startswith(prefix) or not digits.isascii() or not digits.isdigit() or len(digits) > 17:
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid next_batch token")
    return int(digits)


class SearchService:
    def __init__(self, rooms: RoomService, messages: MessageService, repo: EventSearchRepository) -> None:
        self.rooms = rooms
        self.messages = messages
        self.repo = repo

    async def search(self, user_id: str, device_id: str, body: JsonDict, next_batch: str | None) -> JsonDict:
        query = _parse(body)
        if query is None:
            return {"search_categories": {}}
        cursor = _decode_batch(next_batch, query.order_by)
        ranges = await self._visible_rooms(user_id, query.event_filter)
        matches, resume = await self._matches(
            user_id, query, ranges, cursor if query.order_by == "recent" else NO_UPPER_BOUND
        )
        if query.order_by == "rank":
            matches.sort(key=lambda m: (-m[1], -m[0].stream_pos))
            page = matches[cursor:cursor + query.limit]
            more = cursor + query.limit < len(matches)
            token = f"o{cursor + query.limit}" if more else None
        else:
            page = matches[:query.limit]
            more = len(matches) > query.limit
            # More matches, or the scan stopped at its bound before the oldest event.
            token = f"p{page[-1][0].stream_pos}" if more else (None if resume is None else f"p{resume}")
        formatter = self.rooms.formatter
        results = []
        for event, rank in page:
            item: JsonDict = {"rank": rank, "result": await formatter.format_one(event, user_id, device_id)}
            if query.before_limit is not None:
                item["context"] = await self._context(user_id, device_id, query, event, ranges[event.room_id])
            results.append(item)
        out: JsonDict = {"count": len(matches), "highlights": query.words, "results": results}
        if token is not None:
            out["next_batch"] = token
        if query.include_state:
            out["state"] = {room: await self.rooms.get_state(user_id, room)
                            for room in dict.fromkeys(e.room_id for e, _ in page)}
        if query.group_by:
            out["groups"] = self._groups(query, page, token)
        return {"search_categories": {"room_events": out}}

    async def _visible_rooms(self, user_id: str, event_filter: RoomEventFilter) -> dict[str, tuple[int, int]]:
        ranges: dict[str, tuple[int, int]] = {}
        for held in await self.rooms.repo.memberships_of_user(user_id):
            if held.membership in ("invite", "knock") or not event_filter.allows_room(held.room_id):
                continue
            try:
                ranges[held.room_id] = await self.rooms.visible_range(user_id, held.room_id)
            except MatrixError:
                continue
        return ranges

    async def _matches(self, user_id: str, query: _Query, ranges: dict[str, tuple[int, int]],
                       before: int) -> tuple[list[tuple[StoredEvent, float]], int | None]:
        """Matches newest first, and where to resume when the scan stopped at its bound."""
        types = sorted({KEY_TYPES[k] for k in query.keys})
        wanted = MAX_MATCHES if query.order_by == "rank" else query.limit + 1
        found: list[tuple[StoredEvent, float]] = []
        scanned = 0
        rooms = sorted(ranges)
        needle = _needle(query.words)
        exhausted = not rooms
        while not exhausted and scanned < MAX_SCANNED and len(found) < wanted:
            batch = await self.repo.candidates(rooms, types, before, BATCH, needle)
            exhausted = len(batch) < BATCH
            scanned += len(batch)
            if batch:
                before = batch[-1].stream_pos
            visible = [e for e in batch if ranges[e.room_id][0] < e.stream_pos <= ranges[e.room_id][1]
                       and query.event_filter.allows_event(e.type, e.sender)]
            for event in await self.messages.unignored(user_id, visible):
                rank = _rank(query, event)
                if rank > 0:
                    found.append((event, rank))
        return found[:wanted], None if exhausted or len(found) >= wanted else before

    async def _context(self, user_id: str, device_id: str, query: _Query, event: StoredEvent,
                       visible: tuple[int, int]) -> JsonDict:
        lower, upper = visible
        events = self.rooms.events
        before = await events.paginate(event.room_id, event.stream_pos - 1, "b", query.before_limit or 0,
                                       None, lower, upper)
        after = await events.paginate(event.room_id, event.stream_pos, "f", query.after_limit, None, lower, upper)
        before = await self.messages.unignored(user_id, before)
        after = await self.messages.unignored(user_id, after)
        formatter = self.rooms.formatter
        context: JsonDict = {
            "start": encode_position_token((before[-1].stream_pos if before else event.stream_pos) - 1),
            "end": encode_position_token(after[-1].stream_pos if after else event.stream_pos),
            "events_before": await formatter.format(before, user_id, device_id),
            "events_after": await formatter.format(after, user_id, device_id),
        }
        if query.include_profile:
            senders = {e.sender for e in [event, *before, *after]}
            members = await events.member_events((event.room_id, s) for s in senders)
            context["profile_info"] = {
                sender: {k: member.pdu.get("content", {}).get(k) for k in ("displayname", "avatar_url")
                         if isinstance(member.pdu.get("content", {}).get(k), str)}
                for (_, sender), member in members.items()
            }
        return context

    @staticmethod
    def _groups(query: _Query, page: list[tuple[StoredEvent, float]], token: str | None) -> JsonDict:
        groups: JsonDict = {}
        for key in query.group_by:
            by_value: dict[str, JsonDict] = {}
            for event, _ in page:
                value = event.room_id if key == "room_id" else event.sender
                group = by_value.setdefault(value, {"results": [], "order": len(by_value) + 1})
                group["results"].append(event.event_id)
                if token is not None:
                    group["next_batch"] = token
            groups[key] = by_value
        return groups

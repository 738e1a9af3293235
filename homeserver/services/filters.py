"""Sync filters: validated, stored per user, and applied by the /sync contributors.

A filter id is derived from the filter's sorted JSON, so uploading the same
filter again (clients do that at every start) returns the same id and
stores nothing new.  ``get`` is what /sync uses for ``filter=<id>``.

The matching helpers (:func:`event_allowed`, :func:`apply_event_filter`,
:func:`room_allowed`) implement the spec's EventFilter semantics: ``types``
and ``not_types`` with ``*`` wildcards, ``senders``/``not_senders``,
``limit``, and RoomFilter ``rooms``/``not_rooms``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import MAX_ID_LENGTH, is_valid_opaque_id, parse_room_id, parse_user_id
from homeserver.services.clock import Clock
from homeserver.storage.filters import FilterRepository

JsonDict = dict[str, Any]

MAX_LIST_ITEMS = 1000
MAX_LIMIT = 1_000_000
FILTER_ID_LENGTH = 22

_EVENT_FILTER_LISTS = ("types", "not_types")
_SENDER_LISTS = ("senders", "not_senders")
_ROOM_LISTS = ("rooms", "not_rooms")
_ROOM_EVENT_BOOLS = (
    "contains_url",
    "include_redundant_members",
    "lazy_load_members",
    "unread_thread_notifications",
)
_ROOM_FILTER_SECTIONS = ("ephemeral", "state", "timeline", "account_data")


def _invalid(message: str) -> MatrixError:
    return MatrixError(400, Codes.BAD_JSON, message)


def _string_list(value: Any, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _invalid(f"{where} must be a list of strings")
    if len(value) > MAX_LIST_ITEMS:
        raise _invalid(f"{where} may hold at most {MAX_LIST_ITEMS} entries")
    if any(not v or len(v) > MAX_ID_LENGTH for v in value):
        raise _invalid(f"{where} entries must be 1 to {MAX_ID_LENGTH} characters")
    return value


def _check_event_filter(value: Any, where: str, room_event: bool) -> None:
    if not isinstance(value, dict):
        raise _invalid(f"{where} must be an object")
    if "limit" in value:
        limit = value["limit"]
        if isinstance(limit, bool) or not isinstance(limit, int) or not 0 <= limit <= MAX_LIMIT:
            raise _invalid(f"{where}.limit must be a non-negative integer")
    for key in _EVENT_FILTER_LISTS:
        if key in value:
            _string_list(value[key], f"{where}.{key}")
    for key in _SENDER_LISTS:
        if key in value:
            for user_id in _string_list(value[key], f"{where}.{key}"):
                try:
                    parse_user_id(user_id)
                except MatrixError:
                    raise _invalid(f"{where}.{key} holds an invalid user id") from None
    if room_event:
        for key in _ROOM_LISTS:
            if key in value:
                _check_room_ids(value[key], f"{where}.{key}")
        for key in _ROOM_EVENT_BOOLS:
            if key in value and not isinstance(value[key], bool):
                raise _invalid(f"{where}.{key} must be a boolean")


def _check_room_ids(value: Any, where: str) -> None:
    for room_id in _string_list(value, where):
        try:
            parse_room_id(room_id)
        except MatrixError:
            raise _invalid(f"{where} holds an invalid room id") from None


def validate_filter(value: Any) -> JsonDict:
    """Check a Matrix Filter object's shape; return it unchanged or raise M_BAD_JSON.

    Unknown keys are kept (forward compatibility); every known key must have
    the spec's type.
    """
    if not isinstance(value, dict):
        raise _invalid("A filter must be a JSON object")
    if "event_fields" in value:
        _string_list(value["event_fields"], "event_fields")
    if "event_format" in value and value["event_format"] not in ("client", "federation"):
        raise _invalid("event_format must be 'client' or 'federation'")
    for key in ("presence", "account_data"):
        if key in value:
            _check_event_filter(value[key], key, room_event=False)
    if "room" in value:
        room = value["room"]
        if not isinstance(room, dict):
            raise _invalid("room must be an object")
        for key in _ROOM_LISTS:
            if key in room:
                _check_room_ids(room[key], f"room.{key}")
        if "include_leave" in room and not isinstance(room["include_leave"], bool):
            raise _invalid("room.include_leave must be a boolean")
        for key in _ROOM_FILTER_SECTIONS:
            if key in room:
                _check_event_filter(room[key], f"room.{key}", room_event=True)
    return value


def filter_id_for(filter_json: str) -> str:
    digest = hashlib.sha256(filter_json.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")[:FILTER_ID_LENGTH]


# ----------------------------------------------------------------- matching
def _matches_any(value: str, patterns: list[str]) -> bool:
    """Exact match, or a pattern whose only wildcard is ``*``."""
    for pattern in patterns:
        if "*" in pattern:
            regex = ".*".join(re.escape(part) for part in pattern.split("*"))
            if re.fullmatch(regex, value, flags=re.DOTALL):
                return True
        elif value == pattern:
            return True
    return False


def event_allowed(event_filter: JsonDict | None, event: JsonDict) -> bool:
    """Whether an event passes an EventFilter's type and sender rules."""
    if not event_filter:
        return True
    event_type = str(event.get("type", ""))
    sender = event.get("sender")
    if "not_types" in event_filter and _matches_any(event_type, event_filter["not_types"]):
        return False
    if "types" in event_filter and not _matches_any(event_type, event_filter["types"]):
        return False
    if sender is not None:
        if "not_senders" in event_filter and sender in event_filter["not_senders"]:
            return False
        if "senders" in event_filter and sender not in event_filter["senders"]:
            return False
    return True


def apply_event_filter(event_filter: JsonDict | None, events: list[JsonDict]) -> list[JsonDict]:
    """The events that pass the filter, at most ``limit`` of them (the latest)."""
    if not event_filter:
        return events
    kept = [e for e in events if event_allowed(event_filter, e)]
    limit = event_filter.get("limit")
    if isinstance(limit, int) and not isinstance(limit, bool) and len(kept) > limit:
        kept = kept[-limit:]
    return kept


def room_allowed(room_filter: JsonDict | None, room_id: str) -> bool:
    """Whether a RoomFilter (or a RoomEventFilter) lets ``room_id`` through."""
    if not room_filter:
        return True
    if "not_rooms" in room_filter and room_id in room_filter["not_rooms"]:
        return False
    if "rooms" in room_filter and room_id not in room_filter["rooms"]:
        return False
    return True


def room_section_filter(sync_filter: JsonDict | None, section: str) -> JsonDict | None:
    """``filter["room"][section]`` (a RoomEventFilter) if present."""
    room = (sync_filter or {}).get("room")
    if not isinstance(room, dict):
        return None
    value = room.get(section)
    return value if isinstance(value, dict) else None


def room_event_allowed(
    sync_filter: JsonDict | None, section: str, room_id: str
) -> bool:
    """Whether the room-level and the section-level room lists let ``room_id`` through."""
    room = (sync_filter or {}).get("room")
    if isinstance(room, dict) and not room_allowed(room, room_id):
        return False
    return room_allowed(room_section_filter(sync_filter, section), room_id)


class FilterService:
    def __init__(self, filters: FilterRepository, clock: Clock) -> None:
        self.filters = filters
        self.clock = clock

    async def create(self, user_id: str, body: Any) -> str:
        """Validate and store a filter; return its id."""
        validated = validate_filter(body)
        text = json.dumps(validated, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        filter_id = filter_id_for(text)
        await self.filters.store(user_id, filter_id, text, self.clock.now_ms())
        return filter_id

    async def get(self, user_id: str, filter_id: str) -> JsonDict | None:
        """The stored filter, or None when ``user_id`` has no filter with this id."""
        if not is_valid_opaque_id(filter_id, 64):
            return None
        text = await self.filters.get(user_id, filter_id)
        if text is None:
            return None
        value: JsonDict = json.loads(text)
        return value

"""Matrix filters (the parts rooms, /messages and /sync honour) and pagination tokens."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from common.errors import Codes, MatrixError
from common.strict_json import StrictJsonError, loads_strict
from homeserver.services.sync_api import SyncToken

JsonDict = dict[str, Any]

DEFAULT_TIMELINE_LIMIT = 10
MAX_TIMELINE_LIMIT = 500
MAX_PAGINATION_LIMIT = 1000


def _bad(message: str) -> MatrixError:
    return MatrixError(400, Codes.BAD_JSON, f"Invalid filter: {message}")


def _str_list(value: Any, name: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > 500 or not all(isinstance(v, str) and len(v) <= 255 for v in value):
        raise _bad(f"{name} must be a list of strings")
    return list(value)


@dataclass(frozen=True)
class RoomEventFilter:
    limit: int | None = None
    types: list[str] | None = None
    not_types: list[str] | None = None
    senders: list[str] | None = None
    not_senders: list[str] | None = None
    rooms: list[str] | None = None
    not_rooms: list[str] | None = None
    lazy_load_members: bool = False
    include_redundant_members: bool = False

    @classmethod
    def parse(cls, value: Any, name: str = "filter") -> RoomEventFilter:
        if value is None:
            return cls()
        if not isinstance(value, dict):
            raise _bad(f"{name} must be an object")
        limit = value.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
            raise _bad(f"{name}.limit must be a non-negative integer")
        lazy = value.get("lazy_load_members", False)
        redundant = value.get("include_redundant_members", False)
        if not isinstance(lazy, bool) or not isinstance(redundant, bool):
            raise _bad("lazy_load_members and include_redundant_members must be booleans")
        return cls(
            limit=limit,
            types=_str_list(value.get("types"), f"{name}.types"),
            not_types=_str_list(value.get("not_types"), f"{name}.not_types"),
            senders=_str_list(value.get("senders"), f"{name}.senders"),
            not_senders=_str_list(value.get("not_senders"), f"{name}.not_senders"),
            rooms=_str_list(value.get("rooms"), f"{name}.rooms"),
            not_rooms=_str_list(value.get("not_rooms"), f"{name}.not_rooms"),
            lazy_load_members=lazy,
            include_redundant_members=redundant,
        )

    def allows_room(self, room_id: str) -> bool:
        if self.rooms is not None and room_id not in self.rooms:
            return False
        return not (self.not_rooms and room_id in self.not_rooms)

    def allows_event(self, event_type: str, sender: str) -> bool:
        """The filter's types/not_types (``*`` wildcards) and senders/not_senders."""
        if self.not_types and any(type_matches(p, event_type) for p in self.not_types):
            return False
        if self.types is not None and not any(type_matches(p, event_type) for p in self.types):
            return False
        if self.not_senders and sender in self.not_senders:
            return False
        return self.senders is None or sender in self.senders


def type_matches(pattern: str, event_type: str) -> bool:
    """Spec filters: ``*`` matches any run of characters, everything else literally."""
    if "*" not in pattern:
        return pattern == event_type
    head, *middle, tail = pattern.split("*")
    if not event_type.startswith(head) or not event_type.endswith(tail) or len(event_type) < len(head) + len(tail):
        return False
    at, end = len(head), len(event_type) - len(tail)
    for part in middle:
        found = event_type.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


@dataclass(frozen=True)
class SyncFilter:
    raw: JsonDict
    timeline: RoomEventFilter
    state: RoomEventFilter
    rooms: list[str] | None
    not_rooms: list[str] | None
    include_leave: bool
    # "client" (ClientEvent) or "federation" (the PDU as servers exchange it).
    event_format: str = "client"

    @property
    def federation_format(self) -> bool:
        return self.event_format == "federation"

    @property
    def timeline_limit(self) -> int:
        limit = self.timeline.limit if self.timeline.limit is not None else DEFAULT_TIMELINE_LIMIT
        return max(0, min(limit, MAX_TIMELINE_LIMIT))

    @property
    def lazy_load_members(self) -> bool:
        return self.state.lazy_load_members

    def allows_room(self, room_id: str) -> bool:
        if self.rooms is not None and room_id not in self.rooms:
            return False
        return not (self.not_rooms and room_id in self.not_rooms)

    @classmethod
    def parse(cls, value: Any) -> SyncFilter:
        if value is None:
            value = {}
        if not isinstance(value, dict):
            raise _bad("a filter must be an object")
        room = value.get("room", {})
        if not isinstance(room, dict):
            raise _bad("room must be an object")
        include_leave = room.get("include_leave", False)
        if not isinstance(include_leave, bool):
            raise _bad("room.include_leave must be a boolean")
        event_format = value.get("event_format", "client")
        if event_format not in ("client", "federation"):
            raise _bad("event_format must be 'client' or 'federation'")
        for key in ("presence", "account_data"):
            if key in value and not isinstance(value[key], dict):
                raise _bad(f"{key} must be an object")
        for key in ("ephemeral", "account_data"):
            RoomEventFilter.parse(room.get(key), f"room.{key}")
        return cls(
            raw=value,
            timeline=RoomEventFilter.parse(room.get("timeline"), "room.timeline"),
            state=RoomEventFilter.parse(room.get("state"), "room.state"),
            rooms=_str_list(room.get("rooms"), "room.rooms"),
            not_rooms=_str_list(room.get("not_rooms"), "room.not_rooms"),
            include_leave=include_leave,
            event_format=event_format,
        )


def parse_filter_param(text: str) -> JsonDict | None:
    """An inline JSON filter, or None if ``text`` is a filter id."""
    if not text.lstrip().startswith("{"):
        return None
    try:
        value = loads_strict(text)
    except StrictJsonError as exc:
        errcode = Codes.NOT_JSON if exc.not_json else Codes.BAD_JSON
        raise MatrixError(400, errcode, f"The filter is not acceptable JSON: {exc}") from None
    if not isinstance(value, dict):
        raise _bad("a filter must be an object")
    return value


def encode_position_token(pos: int) -> str:
    """A pagination token: "after the event at stream position ``pos``" (negative: backfilled
    history, homeserver/storage/history.py)."""
    return f"t{pos}"


def decode_position_token(token: str) -> int:
    """``t<pos>`` from /messages, or a /sync token (its events position)."""
    digits = token[2:] if token.startswith("t-") else token[1:]
    if token.startswith("t") and digits.isascii() and digits.isdigit() and len(token) <= 18:
        return int(token[1:])
    if token.startswith("p"):
        return SyncToken.decode(token).get("events")
    raise MatrixError(400, Codes.INVALID_PARAM, "Invalid pagination token")


class ParsedFilters:
    """Parsed /sync filters per (user, ``filter`` parameter), least recently used out.

    A stored filter never changes: its id is the hash of its JSON, and
    filters are never edited or deleted, so a remembered one stays right;
    an inline filter is its own parameter.  Unknown ids are never put here.
    """

    def __init__(self, size: int = 10_000, max_param: int = 4096) -> None:
        self.size = size
        self.max_param = max_param
        self._parsed: OrderedDict[tuple[str, str], SyncFilter] = OrderedDict()

    def get(self, user_id: str, param: str) -> SyncFilter | None:
        found = self._parsed.get((user_id, param))
        if found is not None:
            self._parsed.move_to_end((user_id, param))
        return found

    def put(self, user_id: str, param: str, parsed: SyncFilter) -> SyncFilter:
        if len(param) <= self.max_param:
            self._parsed[(user_id, param)] = parsed
            if len(self._parsed) > self.size:
                self._parsed.popitem(last=False)
        return parsed

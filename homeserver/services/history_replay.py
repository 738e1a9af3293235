"""History visibility event by event (client-server API, "History visibility").

:func:`homeserver.services.history_visibility.history_floor` bounds a member's view
by the room's *current* setting; this module replays the setting and the member's
membership as they were at each event, so that an event sent while the room was
``joined`` (or ``invited``) stays hidden from someone who was not joined (or
invited) then, even after the room became ``shared``.  The spec's rules, with the
state before each event (stream order):

* ``world_readable`` or ``shared``: visible (a member reads the room's history);
* ``invited``: visible if the user was invited or joined;
* ``joined``: visible if the user was joined;
* the user's own membership events are always visible;
* an ``m.room.history_visibility`` event is visible if the setting before *or*
  after it allows it (the spec: "the user can see the event if either" value does).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Callable, Sequence

from homeserver.storage.events import EventRepository, StoredEvent

HV = "m.room.history_visibility"


def _value(event: StoredEvent) -> str:
    value = event.content.get("history_visibility")
    return value if isinstance(value, str) else "shared"


def _allows(visibility: str, membership: str | None) -> bool:
    if visibility in ("world_readable", "shared"):
        return True
    if visibility == "invited":
        return membership in ("invite", "join")
    if visibility == "joined":
        return membership == "join"
    return True  # an unknown value: the spec's default, shared


class _Timeline:
    """Values of one kind of state event by stream position."""

    def __init__(self, events: Sequence[StoredEvent], value: Callable[[StoredEvent], str | None]) -> None:
        self.positions = [e.stream_pos for e in events]
        self.values = [value(e) for e in events]

    def before(self, pos: int, default: str | None) -> str | None:
        i = bisect.bisect_left(self.positions, pos)
        return self.values[i - 1] if i else default


class OpenRooms:
    """Rooms whose history was never restricted (no ``joined`` or ``invited`` setting)
    up to a known position of the events stream: their events need no replay.

    A room stays open past that position for a caller that holds every event of
    the room after it (a /sync's complete timeline) with no setting among them
    that restricts: that is a fact of the events stream, true on every instance.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._upto: OrderedDict[str, int] = OrderedDict()

    def still_open(self, room_id: str, after: int, upto: int, events: Sequence[StoredEvent]) -> bool:
        """Open up to ``upto``, ``events`` being every event of the room in (``after``, ``upto``]."""
        known = self._upto.get(room_id)
        if known is None or known < after or any(_restricts(e) for e in events if e.stream_pos > known):
            return False
        self.note(room_id, upto)
        return True

    def note(self, room_id: str, upto: int) -> None:
        self._upto[room_id] = max(upto, self._upto.get(room_id, upto))
        self._upto.move_to_end(room_id)
        if len(self._upto) > self.size:
            self._upto.popitem(last=False)


def _restricts(event: StoredEvent) -> bool:
    return event.type == HV and event.state_key == "" and _value(event) in ("joined", "invited")


async def visible_to(events_repo: EventRepository, room_id: str, user_id: str,
                     events: list[StoredEvent], open_rooms: OpenRooms | None = None,
                     complete_after: int | None = None, upto: int | None = None) -> list[StoredEvent]:
    """``events`` (any order) without those the user may not see as of their time.

    With ``open_rooms``, ``upto`` (at or past the last of ``events``: a /sync
    build's position) and ``complete_after`` (``events`` are every event of the
    room in (``complete_after``, ``upto``]), a room known to be open answers
    without reading its settings."""
    if not events:
        return events
    if open_rooms is not None and complete_after is not None and upto is not None and open_rooms.still_open(
            room_id, complete_after, upto, events):
        return events
    last = max(e.stream_pos for e in events)
    upto = last if upto is None else max(upto, last)
    settings = await events_repo.state_history(room_id, HV, "", upto)
    if not any(_value(e) in ("joined", "invited") for e in settings):
        if open_rooms is not None:
            open_rooms.note(room_id, upto)
        return events  # never restricted up to these events: nothing to replay
    hv = _Timeline(settings, _value)
    members = _Timeline(await events_repo.state_history(room_id, "m.room.member", user_id, upto),
                        lambda e: e.membership)
    out = []
    for event in events:
        if event.type == "m.room.member" and event.state_key == user_id:
            out.append(event)
            continue
        membership = members.before(event.stream_pos, None)
        setting = hv.before(event.stream_pos, "shared") or "shared"
        allowed = _allows(setting, membership)
        if not allowed and event.type == HV and event.state_key == "":
            allowed = _allows(_value(event), membership)
        if allowed:
            out.append(event)
    return out

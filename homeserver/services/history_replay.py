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


async def visible_to(events_repo: EventRepository, room_id: str, user_id: str,
                     events: list[StoredEvent]) -> list[StoredEvent]:
    """``events`` (any order) without those the user may not see as of their time."""
    if not events:
        return events
    upto = max(e.stream_pos for e in events)
    settings = await events_repo.state_history(room_id, HV, "", upto)
    if not any(_value(e) in ("joined", "invited") for e in settings):
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

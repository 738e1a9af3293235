"""Where a member's view of a room's history begins (client-server API, "History
visibility").

``joined``: from their join; ``invited``: from the invitation that led to the
join; ``shared`` and ``world_readable``: everything.  A non-member of a
``world_readable`` room reads from the point it became so.  The room's current
``m.room.history_visibility`` decides this floor (an exclusive lower stream
position, which bounds paging); :mod:`homeserver.services.history_replay` then
replays the setting each event was sent under.
"""

from __future__ import annotations

from homeserver.storage.events import EventRepository
from homeserver.storage.rooms import Membership

RESTRICTED = ("joined", "invited")
# No floor: everything, including history backfilled from other servers, which sits at negative
# stream positions (homeserver/storage/history.py).
NO_LOWER_BOUND = -(2**62)


# How many join events (profile changes) to walk back for a member who left.
MAX_JOIN_STEPS = 200


async def _last_joined_since(events: EventRepository, member: Membership) -> int | None:
    """Where the stretch of ``join`` before a leave or ban began (None: never joined).

    Walking back stops after ``MAX_JOIN_STEPS`` events, at a later start: that
    hides more history, never less."""
    start = None
    pos = member.stream_pos - 1
    for _ in range(MAX_JOIN_STEPS):
        event = await events.membership_at(member.room_id, member.user_id, pos)
        if event is None or event.membership != "join":
            break
        start = event.stream_pos
        pos = event.stream_pos - 1
    return start


async def history_floor(events: EventRepository, member: Membership, visibility: str | None) -> int:
    """Events at or below the returned position are hidden from ``member``."""
    if visibility not in RESTRICTED:
        return NO_LOWER_BOUND
    joined_since = member.joined_since
    if joined_since is None and member.membership in ("leave", "ban"):
        # A former member keeps what they could see while joined, and no more.
        joined_since = await _last_joined_since(events, member)
        if joined_since is None:
            return member.stream_pos - 1
    if joined_since is None:
        return 0
    floor = joined_since - 1  # the join itself is visible
    if visibility == "invited":
        before = await events.membership_at(member.room_id, member.user_id, joined_since - 1)
        if before is not None and before.membership == "invite":
            floor = before.stream_pos - 1
    return floor


async def world_readable_floor(events: EventRepository, room_id: str) -> int | None:
    """For a non-member: None unless the room is ``world_readable`` now; else the
    exclusive lower position of what they may read, the events since the setting
    became ``world_readable`` (spec: events sent while the value was
    ``world_readable``; the ``m.room.history_visibility`` event itself is visible
    when the value after it allows).  Earlier ``world_readable`` stretches stay
    hidden: hiding more, never less."""
    event = await events.state_event(room_id, "m.room.history_visibility", "")
    if event is None or event.content.get("history_visibility") != "world_readable":
        return None
    return event.stream_pos - 1


async def room_visibility(events: EventRepository, room_id: str) -> str | None:
    event = await events.state_event(room_id, "m.room.history_visibility", "")
    value = event.content.get("history_visibility") if event is not None else None
    return value if isinstance(value, str) else None

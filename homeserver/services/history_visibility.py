"""Where a member's view of a room's history begins (client-server API, "History
visibility").

``joined``: from their join; ``invited``: from the invitation that led to the
join; ``shared`` and ``world_readable``: everything.  The room's current
``m.room.history_visibility`` decides (Parley does not replay a visibility
change for each event).  The answer is an exclusive lower stream position.
"""

from __future__ import annotations

from homeserver.storage.events import EventRepository
from homeserver.storage.rooms import Membership

RESTRICTED = ("joined", "invited")


async def history_floor(events: EventRepository, member: Membership, visibility: str | None) -> int:
    """Events at or below the returned position are hidden from ``member``."""
    if visibility not in RESTRICTED or member.joined_since is None:
        return 0
    floor = member.joined_since - 1  # the join itself is visible
    if visibility == "invited":
        before = await events.membership_at(member.room_id, member.user_id, member.joined_since - 1)
        if before is not None and before.membership == "invite":
            floor = before.stream_pos - 1
    return floor


async def room_visibility(events: EventRepository, room_id: str) -> str | None:
    event = await events.state_event(room_id, "m.room.history_visibility", "")
    value = event.content.get("history_visibility") if event is not None else None
    return value if isinstance(value, str) else None

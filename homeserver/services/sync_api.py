"""The contract between /sync and the services that feed it.

``/sync`` (``services/sync.py``) owns the room timelines and state.  Every
other stream — to-device, receipts, typing, presence, account data, device
lists, one-time-key counts — is a :class:`SyncContributor` registered with
the sync service in ``app.py``.  A contributor reads its own stream between
``ctx.since`` and ``ctx.upto`` and writes its part of the response.

Room membership, which many contributors need (who shares a room with whom),
is read through :class:`MembershipReader`, implemented by the rooms service.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from common.errors import Codes, MatrixError

# Order matters: it is the order of positions inside a sync token.  New
# streams are appended; a token with fewer positions reads the missing ones as 0.
STREAMS: tuple[str, ...] = (
    "events",
    "receipts",
    "typing",
    "presence",
    "to_device",
    "device_lists",
    "account_data",
)


MAX_POSITION = 2**53 - 1


@dataclass(frozen=True)
class SyncToken:
    """One position per stream, encoded as ``p<pos>_<pos>_...``."""

    positions: tuple[int, ...]

    def get(self, stream: str) -> int:
        index = STREAMS.index(stream)
        return self.positions[index] if index < len(self.positions) else 0

    def encode(self) -> str:
        return "p" + "_".join(str(p) for p in self.positions)

    @classmethod
    def decode(cls, text: str) -> SyncToken:
        if not text.startswith("p") or len(text) > 400:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid sync token")
        try:
            parts = tuple(int(p) for p in text[1:].split("_"))
        except ValueError:
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid sync token") from None
        # Positions past 2**53 cannot be real, and past 2**63 SQLite cannot even bind them.
        if not parts or len(parts) > len(STREAMS) or any(not 0 <= p <= MAX_POSITION for p in parts):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid sync token")
        return cls(parts + (0,) * (len(STREAMS) - len(parts)))

    @classmethod
    def from_mapping(cls, positions: dict[str, int]) -> SyncToken:
        return cls(tuple(int(positions.get(s, 0)) for s in STREAMS))


class MembershipReader(Protocol):
    """Room membership queries, implemented by the rooms service."""

    async def joined_rooms(self, user_id: str) -> list[str]: ...

    async def joined_users(self, room_id: str) -> list[str]: ...

    async def users_sharing_a_room(self, user_id: str) -> set[str]:
        """Users (including ``user_id``) joined to at least one room ``user_id`` is joined to."""
        ...

    async def users_sharing_a_room_in_any_state(self, user_id: str) -> set[str]:
        """Like :meth:`users_sharing_a_room`, counting invited and knocking members
        on both sides (end-to-end keys must reach an invitee)."""
        ...


@dataclass
class SyncContext:
    """What a contributor knows about the /sync being answered."""

    user_id: str
    device_id: str
    # None on an initial sync (or full_state without since).
    since: SyncToken | None
    # The positions this response covers up to (read before any data).
    upto: SyncToken
    # Rooms the user is joined to at ``upto``.
    joined_room_ids: list[str]
    full_state: bool
    # The parsed filter (Matrix filter JSON); contributors honour their parts.
    filter: dict[str, Any] = field(default_factory=dict)
    # Rooms that newly appeared in this response (joined since ``since``):
    # contributors send their complete current state for these.
    newly_joined_room_ids: set[str] = field(default_factory=set)
    # A woken long-poll's rebuild: only these streams moved past the positions of
    # its last (empty) build.  None: any stream may have moved (build everything).
    moved: frozenset[str] | None = None
    # The user's own membership events in (since, upto] of the events stream, as
    # this build read them already (None: not read; a contributor reads them itself).
    own_membership_events: list[Any] | None = None
    # Per joined room (not new in this response), every event of (since, upto] of the
    # events stream, where this build read them all (unfiltered, within the timeline
    # limit); rooms missing here were not read whole.
    room_events: dict[str, list[Any]] | None = None

    def needs(self, streams: frozenset[str] | None) -> bool:
        """Whether a part that reads ``streams`` (None: something else too) must be built."""
        return self.moved is None or streams is None or bool(self.moved & streams)


class SyncContributor(Protocol):
    """Adds one stream's data to a /sync response.

    A contributor whose output for an incremental sync depends only on the
    ranges (since, upto] of some streams (and the joined rooms) names them in
    a ``sync_streams`` frozenset attribute: a woken long-poll then skips it
    unless one of them moved.  Without the attribute it runs in every build.
    """

    async def contribute(self, ctx: SyncContext, response: dict[str, Any]) -> bool:
        """Fill ``response`` (the whole /sync body being built; create nested
        dicts as needed, e.g. ``response["rooms"]["join"][room_id]["ephemeral"]``).
        Return True if anything new for this user was added (an incremental
        sync with nothing new keeps waiting)."""
        ...


def room_section(response: dict[str, Any], room_id: str, key: str) -> dict[str, Any]:
    """``response["rooms"]["join"][room_id][key]``, created as needed."""
    room = response.setdefault("rooms", {}).setdefault("join", {}).setdefault(room_id, {})
    section: dict[str, Any] = room.setdefault(key, {})
    return section


WakeTargets = Callable[[str], Awaitable[list[str]]]

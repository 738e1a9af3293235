"""State resolution v1 (room version 1 only); pure.

Room version 1 resolves states with the original algorithm of the
specification (``rooms/v1.md``, "State resolution"); version 2 replaced it
because it can reset a room's state to older versions.  It still has to be
implemented: every server in a version-1 room must compute the same state.

1. *R* starts as the union of the state sets without the conflicting keys (a
   key is conflicting when the sets name different events for it; a key
   missing from some sets is not a conflict);
2. conflicting ``m.room.power_levels`` events, sorted by ascending ``depth``
   then descending ``sha1(event_id)``: the first goes into *R*; each next one
   replaces it while the auth rules allow it in *R*, and the first refused one
   ends the pass;
3. the same for ``m.room.join_rules``, then for each conflicting
   ``m.room.member`` key (in state-key order);
4. every other conflicting key gets, among its events that the auth rules
   allow in *R*, the one with the highest ``depth`` and lowest
   ``sha1(event_id)``; a key none of whose events is allowed stays out of *R*.

Events the caller marks as rejected take no part.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from homeserver.services.event_auth import (
    CREATE,
    JOIN_RULES,
    POWER_LEVELS,
    AuthError,
    StateMap,
    auth_types_for_event,
    check_event_allowed,
)
from homeserver.services.room_versions import RoomVersion

JsonDict = dict[str, Any]
StateKey = tuple[str, str]
StateIds = dict[StateKey, str]


def _sha1(event_id: str) -> str:
    return hashlib.sha1(event_id.encode("utf-8")).hexdigest()  # noqa: S324 - the spec's ordering, not security


def _depth(pdu: JsonDict) -> int:
    depth = pdu.get("depth", 0)
    return depth if isinstance(depth, int) and not isinstance(depth, bool) else 0


def _allowed(event_id: str, resolved: StateIds, events: Mapping[str, JsonDict], version: RoomVersion) -> bool:
    """Whether the auth rules allow the event in the state ``resolved``."""
    pdu = events[event_id]
    keys = [CREATE, *auth_types_for_event(str(pdu.get("type")), str(pdu.get("sender")), pdu.get("state_key"),
                                          pdu.get("content") or {}, version)]
    auth_state: StateMap = {k: events[resolved[k]] for k in keys if k in resolved and resolved[k] in events}
    try:
        check_event_allowed(pdu, auth_state)
    except AuthError:
        return False
    return True


def _auth_pass(key: StateKey, candidates: list[str], resolved: StateIds, events: Mapping[str, JsonDict],
               version: RoomVersion) -> None:
    """Step 2/3: ascending depth, descending sha1; advance while allowed."""
    ordered = sorted(candidates, key=_sha1, reverse=True)
    ordered.sort(key=lambda e: _depth(events[e]))  # stable: ties keep descending sha1
    resolved[key] = ordered[0]
    for event_id in ordered[1:]:
        if not _allowed(event_id, resolved, events, version):
            break
        resolved[key] = event_id


def resolve_v1(version: RoomVersion, state_sets: Sequence[StateIds], events: Mapping[str, JsonDict],
               rejected: AbstractSet[str] = frozenset()) -> StateIds:
    """The v1 resolution of ``state_sets`` (maps of (type, state_key) to event id)."""
    if not state_sets:
        return {}
    resolved: StateIds = {}
    conflicts: dict[StateKey, list[str]] = {}
    for key in set().union(*state_sets):
        values = {s[key] for s in state_sets if key in s}
        if len(values) == 1:
            resolved[key] = next(iter(values))
        else:
            candidates = sorted(v for v in values if v in events and v not in rejected)
            if candidates:
                conflicts[key] = candidates
    for key in (POWER_LEVELS, JOIN_RULES):
        if key in conflicts:
            _auth_pass(key, conflicts.pop(key), resolved, events, version)
    for key in sorted(k for k in conflicts if k[0] == "m.room.member"):
        _auth_pass(key, conflicts.pop(key), resolved, events, version)
    for key in sorted(conflicts):
        ordered = sorted(conflicts[key], key=_sha1)
        ordered.sort(key=lambda e: _depth(events[e]), reverse=True)  # stable: ties keep ascending sha1
        for event_id in ordered:
            if _allowed(event_id, resolved, events, version):
                resolved[key] = event_id
                break
    return resolved

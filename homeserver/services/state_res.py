"""State resolution v2 (room versions 2-11) and v2.1 (room version 12); pure.

Room version 1 uses the original algorithm (``state_res_v1.py``); :func:`resolve`
hands such rooms to it.

:func:`resolve` follows the specification's algorithm step by step:

1. split the state sets into the unconflicted state map and the conflicted
   state set; the *full conflicted set* adds the auth difference (and, in
   v2.1, the *conflicted state subgraph*: auth-graph paths between
   conflicted events);
2. power events of the full conflicted set (plus their auth chain inside it)
   in *reverse topological power ordering* (Kahn's algorithm, smallest by
   sender power desc, ``origin_server_ts``, ``event_id``), then the
   *iterative auth checks* starting from the unconflicted map (v2) or from
   an empty map (v2.1);
3. the remaining events in *mainline ordering* of the resolved power
   levels, iterative auth checks again;
4. the unconflicted map is applied on top.

Every event the algorithm touches must be in ``events`` (the state sets'
events and their whole auth chains); :class:`StateResolver` in
``graph_service.py`` loads them.
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any

from homeserver.services.event_auth import (
    CREATE,
    POWER_LEVELS,
    AuthError,
    StateMap,
    auth_types_for_event,
    check_event_allowed,
    user_power,
)
from homeserver.services.events import reference_ids
from homeserver.services.room_versions import RoomVersion
from homeserver.services.state_res_v1 import resolve_v1

JsonDict = dict[str, Any]
StateKey = tuple[str, str]
StateIds = dict[StateKey, str]


def _key(pdu: JsonDict) -> StateKey:
    return (str(pdu.get("type")), str(pdu.get("state_key", "")))


def is_power_event(pdu: JsonDict) -> bool:
    event_type = pdu.get("type")
    if "state_key" not in pdu:
        return False
    if event_type in ("m.room.power_levels", "m.room.join_rules"):
        return True
    if event_type == "m.room.member":
        membership = (pdu.get("content") or {}).get("membership")
        return membership in ("leave", "ban") and pdu.get("sender") != pdu.get("state_key")
    return False


def auth_chain(event_ids: Sequence[str], events: Mapping[str, JsonDict]) -> set[str]:
    """Every event reachable through ``auth_events`` (the start events excluded)."""
    out: set[str] = set()
    stack = [a for e in event_ids if e in events for a in reference_ids(events[e].get("auth_events"))]
    while stack:
        current = stack.pop()
        if current in out:
            continue
        out.add(current)
        if current in events:
            stack.extend(reference_ids(events[current].get("auth_events")))
    return out


def _conflicted_subgraph(conflicted: set[str], events: Mapping[str, JsonDict]) -> set[str]:
    """v2.1: events on auth-event paths from one conflicted event to another."""
    reaches: dict[str, bool] = {}

    def reaches_conflicted(event_id: str) -> bool:
        # Iterative DFS: does the auth chain of event_id (itself excluded) hold a conflicted event?
        if event_id in reaches:
            return reaches[event_id]
        order: list[str] = []
        stack = [event_id]
        seen: set[str] = set()
        while stack:
            current = stack.pop()
            if current in seen or current in reaches:
                continue
            seen.add(current)
            order.append(current)
            for parent in reference_ids(events.get(current, {}).get("auth_events")):
                stack.append(parent)
        for current in reversed(order):
            parents = reference_ids(events.get(current, {}).get("auth_events"))
            reaches[current] = any(p in conflicted or reaches.get(p, False) for p in parents)
        return reaches[event_id]

    out: set[str] = set()
    for start in conflicted:
        for event_id in auth_chain([start], events) | {start}:
            if event_id in conflicted or reaches_conflicted(event_id):
                out.add(event_id)
    return out


def _auth_state_of(pdu: JsonDict, events: Mapping[str, JsonDict], version: RoomVersion) -> StateMap:
    state: StateMap = {}
    for auth_id in reference_ids(pdu.get("auth_events")):
        auth = events.get(auth_id)
        if auth is not None:
            state[_key(auth)] = auth
    if CREATE not in state and version.room_id_from_create:
        create = events.get("$" + str(pdu.get("room_id", ""))[1:])
        if create is not None:
            state[CREATE] = create
    return state


def _sender_power(pdu: JsonDict, events: Mapping[str, JsonDict], version: RoomVersion) -> int:
    return user_power(_auth_state_of(pdu, events, version), str(pdu.get("sender")))


def reverse_topological_power_order(ids: set[str], events: Mapping[str, JsonDict],
                                    version: RoomVersion) -> list[str]:
    parents = {e: [a for a in reference_ids(events[e].get("auth_events")) if a in ids] for e in ids}
    children: dict[str, list[str]] = {e: [] for e in ids}
    for event_id, auths in parents.items():
        for auth in auths:
            children[auth].append(event_id)
    pending = {e: len(p) for e, p in parents.items()}

    def sort_key(event_id: str) -> tuple[int, int, str]:
        pdu = events[event_id]
        return (-_sender_power(pdu, events, version), int(pdu.get("origin_server_ts", 0)), event_id)

    heap = [sort_key(e) for e, n in pending.items() if n == 0]
    heapq.heapify(heap)
    out: list[str] = []
    while heap:
        _, _, event_id = heapq.heappop(heap)
        out.append(event_id)
        for child in children[event_id]:
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(heap, sort_key(child))
    return out


def _power_levels_parent(event_id: str, events: Mapping[str, JsonDict]) -> str | None:
    for auth_id in reference_ids(events.get(event_id, {}).get("auth_events")):
        auth = events.get(auth_id)
        if auth is not None and _key(auth) == POWER_LEVELS:
            return auth_id
    return None


def mainline_order(ids: set[str], power_levels_id: str | None, events: Mapping[str, JsonDict]) -> list[str]:
    mainline: dict[str, int] = {}
    current = power_levels_id
    index = 0
    while current is not None and current not in mainline:
        mainline[current] = index
        index += 1
        current = _power_levels_parent(current, events)
    infinity = float("inf")

    def position(event_id: str) -> float:
        current = _power_levels_parent(event_id, events)
        while current is not None:
            if current in mainline:
                return mainline[current]
            current = _power_levels_parent(current, events)
        return infinity

    def sort_key(event_id: str) -> tuple[float, int, str]:
        return (-position(event_id), int(events[event_id].get("origin_server_ts", 0)), event_id)

    return sorted(ids, key=sort_key)


def iterative_auth_checks(order: Sequence[str], base: StateIds, events: Mapping[str, JsonDict],
                          version: RoomVersion, rejected: AbstractSet[str] = frozenset()) -> StateIds:
    state = dict(base)
    for event_id in order:
        pdu = events[event_id]
        from_auth = _auth_state_of(pdu, events, version)
        auth_state: StateMap = {}
        keys = [CREATE, *auth_types_for_event(str(pdu.get("type")), str(pdu.get("sender")), pdu.get("state_key"),
                                              pdu.get("content") or {}, version)]
        for key in keys:
            if key in state and state[key] in events:
                auth_state[key] = events[state[key]]
            elif key in from_auth:
                auth_id = next((a for a in reference_ids(pdu.get("auth_events"))
                                if events.get(a) is from_auth[key]), None)
                if auth_id is None or auth_id not in rejected:
                    auth_state[key] = from_auth[key]
        try:
            check_event_allowed(pdu, auth_state)
        except AuthError:
            continue
        state[_key(pdu)] = event_id
    return state


def resolve(version: RoomVersion, state_sets: Sequence[StateIds], events: Mapping[str, JsonDict],
            rejected: AbstractSet[str] = frozenset()) -> StateIds:
    """The resolution of ``state_sets`` (maps of (type, state_key) to event id)."""
    if not state_sets:
        return {}
    if len(state_sets) == 1:
        return dict(state_sets[0])
    if version.state_res == "v1":
        return resolve_v1(version, state_sets, events, rejected)
    keys = set().union(*state_sets)
    unconflicted: StateIds = {}
    conflicted: set[str] = set()
    for key in keys:
        values = {s.get(key) for s in state_sets}
        if len(values) == 1 and None not in values:
            unconflicted[key] = next(iter(values))  # type: ignore[assignment]
        else:
            conflicted.update(v for v in values if v is not None)
    if not conflicted:
        return unconflicted
    chains = [auth_chain(list(s.values()), events) for s in state_sets]
    common = set(chains[0])
    for chain in chains[1:]:
        common &= chain
    difference = set().union(*chains) - common
    full = conflicted | difference
    if version.state_res == "v2.1":
        full |= _conflicted_subgraph(conflicted, events)
    full = {e for e in full if e in events and e not in rejected}

    power = {e for e in full if is_power_event(events[e])}
    for event_id in list(power):
        power |= auth_chain([event_id], events) & full
    ordered_power = reverse_topological_power_order(power, events, version)
    start = {} if version.state_res == "v2.1" else unconflicted
    partial = iterative_auth_checks(ordered_power, start, events, version, rejected)

    rest = full - power
    ordered_rest = mainline_order(rest, partial.get(POWER_LEVELS), events)
    resolved = iterative_auth_checks(ordered_rest, partial, events, version, rejected)
    resolved.update(unconflicted)
    return resolved

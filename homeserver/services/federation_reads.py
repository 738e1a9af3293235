"""What this server tells other servers about a room's graph (server-server API: ``event``,
``state``, ``state_ids``, ``event_auth``, ``backfill``, ``get_missing_events``).

Every read is for a requesting server (``origin``): it must pass the room's
``m.room.server_acl``, and the room reads need one of its users joined now
(the spec's "the requesting server must be in the room").  Events are
filtered by history visibility for that server ("Server behaviour" of the
spec's history visibility section): ``world_readable`` and ``shared`` events
go out as they are; ``invited``/``joined`` events only if one of the origin's
users was invited or joined at the event (``joined``: joined) - otherwise the
redacted copy is sent, so the graph stays whole.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.event_auth import server_of
from homeserver.services.events import redact_event, reference_ids
from homeserver.services.incoming import IncomingEvents
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.services.server_acl import ACL, check_server_allowed
from homeserver.storage.graph import GraphEvent, StateIds

JsonDict = dict[str, Any]
MAX_BACKFILL = 100
MAX_MISSING = 20
MAX_AUTH_CHAIN = 10_000
VISIBILITY = ("m.room.history_visibility", "")


class FederationReads:
    def __init__(self, incoming: IncomingEvents, server_name: str) -> None:
        self.incoming = incoming
        self.graph = incoming.graph
        self.events = incoming.events
        self.server_name = server_name

    # ------------------------------------------------------------ checks
    async def room_version(self, room_id: str) -> RoomVersion:
        head = await self.events.room_head(room_id)
        if head is None or head.purged or head.room_version not in ROOM_VERSIONS:
            raise MatrixError(404, Codes.NOT_FOUND, "This server does not know that room")
        return ROOM_VERSIONS[head.room_version]

    async def check_acl(self, origin: str, room_id: str) -> None:
        acl = await self.events.state_event(room_id, *ACL)
        check_server_allowed(origin, acl.content if acl is not None else None)

    async def check_in_room(self, origin: str, room_id: str) -> RoomVersion:
        """The room's version, once ``origin`` passes the ACL and has a user joined in it."""
        version = await self.room_version(room_id)
        await self.check_acl(origin, room_id)
        joined = await self.incoming.events_joined(room_id)
        if not any(server_of(user) == origin for user in joined):
            raise MatrixError(403, Codes.FORBIDDEN, f"{origin[:100]} has no user in this room")
        return version

    async def _event_in_room(self, room_id: str, event_id: str) -> GraphEvent:
        found = (await self.graph.get_graph_events([event_id])).get(event_id)
        if found is None or found.room_id != room_id:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown event in this room")
        return found

    # ------------------------------------------------------------ visibility
    async def _visible(self, origin: str, event: GraphEvent) -> bool:
        if event.state_group is None:
            return True  # an outlier: auth/state events are never hidden from a server in the room
        state = await self.graph.state_ids(event.state_group)
        known = await self.graph.get_graph_events(
            [v for k, v in state.items() if k == VISIBILITY or (k[0] == "m.room.member"
                                                                 and server_of(k[1]) == origin)])
        vis_event = known.get(state.get(VISIBILITY, ""))
        visibility = (vis_event.pdu.get("content") or {}).get("history_visibility") if vis_event else "shared"
        if visibility not in ("invited", "joined"):
            return True
        allowed = ("join",) if visibility == "joined" else ("join", "invite")
        return any(e.pdu.get("type") == "m.room.member" and (e.pdu.get("content") or {}).get("membership")
                   in allowed for e in known.values())

    async def filter_for_server(self, origin: str, version: RoomVersion, events: Iterable[GraphEvent]) -> list[JsonDict]:
        out = []
        for event in events:
            out.append(event.pdu if await self._visible(origin, event) else redact_event(event.pdu, version))
        return out

    # ------------------------------------------------------------ reads
    async def event(self, origin: str, event_id: str) -> JsonDict:
        """GET /_matrix/federation/v1/event/{eventId}"""
        found = (await self.graph.get_graph_events([event_id])).get(event_id)
        if found is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown event")
        version = await self.check_in_room(origin, found.room_id)
        return self._transaction(await self.filter_for_server(origin, version, [found]))

    def _transaction(self, pdus: list[JsonDict]) -> JsonDict:
        return {"origin": self.server_name, "origin_server_ts": self.incoming.clock.now_ms(), "pdus": pdus}

    async def state_before(self, version: RoomVersion, event: GraphEvent) -> StateIds:
        """The room state just before ``event``: the resolution of the states after its prev events."""
        prevs = await self.graph.get_graph_events(reference_ids(event.pdu.get("prev_events")))
        states = [await self.graph.state_ids(p.state_group) for p in prevs.values() if p.state_group is not None]
        if not states and event.state_group is not None:
            after = await self.graph.state_ids(event.state_group)
            key = (str(event.pdu.get("type")), str(event.pdu.get("state_key")))
            if "state_key" in event.pdu and after.get(key) == event.event_id:
                after.pop(key)
            return after
        return await self.incoming.resolve_states(version, states)

    async def auth_chain(self, event_ids: Iterable[str]) -> list[GraphEvent]:
        """Every event reachable through ``auth_events`` from ``event_ids`` (those excluded), oldest first."""
        start = list(event_ids)
        seen: dict[str, GraphEvent] = {}
        frontier = set()
        for event in (await self.graph.get_graph_events(start)).values():
            frontier.update(reference_ids(event.pdu.get("auth_events")))
        while frontier and len(seen) < MAX_AUTH_CHAIN:
            found = await self.graph.get_graph_events(list(frontier))
            seen.update(found)
            frontier = {a for e in found.values() for a in reference_ids(e.pdu.get("auth_events"))} - set(seen)
        return sorted(seen.values(), key=lambda e: (e.depth, e.event_id))

    async def _state_and_chain(self, origin: str, room_id: str, event_id: str) -> tuple[list[GraphEvent],
                                                                                         list[GraphEvent]]:
        version = await self.check_in_room(origin, room_id)
        event = await self._event_in_room(room_id, event_id)
        if not await self._visible(origin, event):
            raise MatrixError(403, Codes.FORBIDDEN, "The requesting server may not see the state at this event")
        before = await self.state_before(version, event)
        state = list((await self.graph.get_graph_events(before.values())).values())
        chain = await self.auth_chain(before.values())
        in_state = set(before.values())
        return state, [e for e in chain if e.event_id not in in_state]

    async def state_ids(self, origin: str, room_id: str, event_id: str) -> JsonDict:
        """GET /_matrix/federation/v1/state_ids/{roomId}?event_id=..."""
        state, chain = await self._state_and_chain(origin, room_id, event_id)
        return {"pdu_ids": [e.event_id for e in state], "auth_chain_ids": [e.event_id for e in chain]}

    async def state(self, origin: str, room_id: str, event_id: str) -> JsonDict:
        """GET /_matrix/federation/v1/state/{roomId}?event_id=..."""
        state, chain = await self._state_and_chain(origin, room_id, event_id)
        return {"pdus": [e.pdu for e in state], "auth_chain": [e.pdu for e in chain]}

    async def event_auth(self, origin: str, room_id: str, event_id: str) -> JsonDict:
        """GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}"""
        await self.check_in_room(origin, room_id)
        await self._event_in_room(room_id, event_id)
        return {"auth_chain": [e.pdu for e in await self.auth_chain([event_id])]}

    async def backfill(self, origin: str, room_id: str, from_ids: list[str], limit: int) -> JsonDict:
        """GET /_matrix/federation/v1/backfill/{roomId}?v=...&limit=...: the given events and their
        ancestors, newest (deepest) first."""
        version = await self.check_in_room(origin, room_id)
        limit = max(0, min(limit, MAX_BACKFILL))
        found: dict[str, GraphEvent] = {}
        frontier = set(from_ids)
        while frontier and len(found) < limit:
            batch = {k: v for k, v in (await self.graph.get_graph_events(list(frontier))).items()
                     if v.room_id == room_id and v.status == "timeline"}
            found.update(batch)
            frontier = {p for e in batch.values() for p in reference_ids(e.pdu.get("prev_events"))} - set(found)
        chosen = sorted(found.values(), key=lambda e: (-e.depth, e.event_id))[:limit]
        return self._transaction(await self.filter_for_server(origin, version, chosen))

    async def missing_events(self, origin: str, room_id: str, earliest: list[str], latest: list[str],
                             limit: int, min_depth: int) -> JsonDict:
        """POST /_matrix/federation/v1/get_missing_events/{roomId}: the ancestors of ``latest`` that are
        not ``earliest`` (nor their ancestors), at least ``min_depth`` deep, oldest first."""
        version = await self.check_in_room(origin, room_id)
        limit = max(0, min(limit, MAX_MISSING))
        stop = set(earliest)
        found: dict[str, GraphEvent] = {}
        starts = await self.graph.get_graph_events(latest)
        frontier = {p for e in starts.values() if e.room_id == room_id
                    for p in reference_ids(e.pdu.get("prev_events"))} - stop
        while frontier and len(found) < limit:
            batch = {k: v for k, v in (await self.graph.get_graph_events(list(frontier))).items()
                     if v.room_id == room_id and v.depth >= min_depth and v.status == "timeline"}
            for event_id, event in sorted(batch.items(), key=lambda kv: -kv[1].depth):
                if len(found) < limit:
                    found[event_id] = event
            frontier = {p for e in batch.values() for p in reference_ids(e.pdu.get("prev_events"))}
            frontier -= stop | set(found) | set(latest)
        chosen = sorted(found.values(), key=lambda e: (e.depth, e.event_id))
        return {"events": await self.filter_for_server(origin, version, chosen)}

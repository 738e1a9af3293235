"""Events from elsewhere: checked and stored into the room's graph, possibly out of order.

This is the seam the federation layer calls (``receive`` for events with
their place in the graph, ``receive_outlier`` for auth/state events known
without their state).  The checks follow the specification's "Checks
performed on receipt of a PDU", in order:

1. a valid event of the room's version (id, content hash - a mismatch
   redacts the event - and the signatures of the sender's server, of the
   event id's server in v1/v2 and of the authorising server of a
   restricted join; from v5 on with a key whose ``valid_until_ts`` is at
   least the event's ``origin_server_ts``);
2. authorised by its own ``auth_events`` (else *rejected*);
3. authorised by the state before it, the resolution of the states after
   its ``prev_events`` (else *rejected*);
4. authorised by the room's current state (else *soft-failed*: kept in
   the graph, not shown to clients, not a forward extremity).

Missing auth or prev events raise :class:`MissingEvents` naming them; the
caller fetches them and retries.  Accepted events join the timeline, move
the forward extremities, and the current state becomes the resolution of
the extremities' states.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from common.canonical_json import CanonicalJsonError, encode_canonical_json
from common.errors import Codes, MatrixError
from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.event_auth import (
    CREATE,
    AuthError,
    StateMap,
    auth_types_for_event,
    check_event_allowed,
    server_of,
)
from homeserver.services.events import (
    compute_event_id,
    content_hash_matches,
    redact_event,
    redacts_of,
    reference_ids,
    room_id_for_create,
)
from homeserver.services.incoming_redactions import apply_redaction
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.services.signature_keys import (
    MAX_KEY_VALIDITY_MS,
    KeyLookup,
    VerifyKey,
    any_valid_signature,
    effective_valid_until,
)
from homeserver.services.state_res import resolve
from homeserver.storage.current_state import current_state_rows, set_state_row
from homeserver.storage.events import EventRepository, RoomWriter, StoredEvent
from homeserver.storage.graph import Connection, GraphEvent, StateIds

JsonDict = dict[str, Any]
__all__ = ["MAX_KEY_VALIDITY_MS", "IncomingEvents", "KeyLookup", "MissingEvents", "Received", "VerifyKey",
           "effective_valid_until"]


class MissingEvents(Exception):
    """The event refers to events this server does not have yet."""

    def __init__(self, event_ids: list[str]) -> None:
        super().__init__(", ".join(event_ids))
        self.event_ids = event_ids


@dataclass(frozen=True)
class Received:
    event_id: str
    status: str  # accepted | soft_failed | rejected | outlier | duplicate
    reason: str | None = None


def _rules(room_version: str) -> RoomVersion:
    if room_version not in ROOM_VERSIONS:
        raise MatrixError(400, Codes.INCOMPATIBLE_ROOM_VERSION,
                          f"This server does not support room version {room_version[:20]!r}")
    return ROOM_VERSIONS[room_version]


def _key(pdu: JsonDict) -> tuple[str, str]:
    return (str(pdu.get("type")), str(pdu.get("state_key", "")))


class IncomingEvents:
    def __init__(self, events: EventRepository, notifier: Notifier, clock: Clock, key_lookup: KeyLookup) -> None:
        self.events = events
        self.graph = events.graph
        self.notifier = notifier
        self.clock = clock
        self.key_lookup = key_lookup

    # ------------------------------------------------------------ checks
    async def validated(self, room_version: str, pdu: JsonDict) -> tuple[str, JsonDict]:
        """Check 1 alone (format, signatures, content hash): the event id and the event to use."""
        return await self._valid(pdu, _rules(room_version))

    async def _valid(self, pdu: JsonDict, version: RoomVersion) -> tuple[str, JsonDict]:
        for field, kind in (("type", str), ("sender", str), ("content", dict), ("depth", int),
                            ("origin_server_ts", int), ("prev_events", list), ("auth_events", list)):
            if not isinstance(pdu.get(field), kind):
                raise MatrixError(400, Codes.BAD_JSON, f"PDU field {field} is missing or malformed")
        try:
            encode_canonical_json(pdu)  # floats, out-of-range integers: refused (spec, room v6+ rules)
        except CanonicalJsonError as exc:
            raise MatrixError(400, Codes.BAD_JSON, f"The event is not canonical JSON: {exc}") from None
        try:
            event_id = compute_event_id(pdu, version)
        except ValueError as exc:
            raise MatrixError(400, Codes.BAD_JSON, str(exc)) from None
        servers = {server_of(str(pdu["sender"]))}
        if version.event_id_scheme == "server":
            servers.add(server_of(event_id))
        via = pdu["content"].get("join_authorised_via_users_server")
        if pdu["type"] == "m.room.member" and version.restricted and isinstance(via, str):
            servers.add(server_of(via))
        signatures = pdu.get("signatures")
        for server in servers:
            keys = signatures.get(server) if isinstance(signatures, dict) else None
            if not isinstance(keys, dict) or not await any_valid_signature(self.key_lookup, pdu, server, keys, version):
                raise MatrixError(403, Codes.FORBIDDEN, f"The event is not signed by {server}")
        if not content_hash_matches(pdu):
            pdu = redact_event(pdu, version)  # the spec: a wrong content hash redacts the event
        return event_id, pdu

    async def _known(self, ids: list[str], conn: Connection | None = None) -> dict[str, GraphEvent]:
        return await self.graph.get_graph_events(ids, conn)

    async def _auth_map(self, pdu: JsonDict, version: RoomVersion, room_id: str) -> StateMap:
        """Rule 3: the event's own auth events, all known, unique per key, not rejected, of this room."""
        ids = reference_ids(pdu.get("auth_events"))
        if version.room_id_from_create and pdu.get("type") != "m.room.create":
            ids = [*ids, "$" + room_id[1:]]
        known = await self._known(ids)
        missing = [i for i in ids if i not in known]
        if missing:
            raise MissingEvents(missing)
        allowed = set(auth_types_for_event(str(pdu["type"]), str(pdu["sender"]), pdu.get("state_key"),
                                           pdu["content"], version)) | {CREATE}
        state: StateMap = {}
        if len(set(ids)) != len(ids):
            raise AuthError("an auth event is named twice")  # the spec: duplicate entries are rejected
        for auth_id in ids:
            auth = known[auth_id]
            key = _key(auth.pdu)
            if auth.status == "rejected":
                raise AuthError(f"auth event {auth_id} was rejected")
            if auth.room_id != room_id:
                raise AuthError("an auth event belongs to another room")
            if key in state and state[key] is not auth.pdu:
                raise AuthError(f"two auth events for {key}")
            if key not in allowed:
                raise AuthError(f"auth event {auth_id} is not one the auth rules select")
            state[key] = auth.pdu
        return state

    async def _state_map(self, ids: StateIds, pdu: JsonDict, version: RoomVersion) -> StateMap:
        keys = [CREATE, *auth_types_for_event(str(pdu["type"]), str(pdu["sender"]), pdu.get("state_key"),
                                              pdu["content"], version)]
        wanted = {k: ids[k] for k in keys if k in ids}
        known = await self._known(list(wanted.values()))
        return {k: known[v].pdu for k, v in wanted.items() if v in known}

    async def resolve_states(self, version: RoomVersion, states: list[StateIds],
                             conn: Connection | None = None) -> StateIds:
        """State resolution with every event it needs loaded (state events and auth chains)."""
        if len(states) <= 1 or all(s == states[0] for s in states):
            return dict(states[0]) if states else {}
        loaded: dict[str, JsonDict] = {}
        rejected: set[str] = set()
        frontier = {e for s in states for e in s.values()}
        while frontier:
            found = await self._known(list(frontier), conn)  # conn: see this write's own rows
            frontier = set()
            for event_id, event in found.items():
                loaded[event_id] = event.pdu
                if event.status == "rejected":
                    rejected.add(event_id)
                for auth_id in reference_ids(event.pdu.get("auth_events")):
                    if auth_id not in loaded:
                        frontier.add(auth_id)
            frontier -= set(loaded)
        return resolve(version, states, loaded, rejected)

    # ------------------------------------------------------------ entry points
    async def receive_outlier(self, room_version: str, pdu: JsonDict) -> Received:
        """An event known without its place in the graph (e.g. an auth event): auth-chain checks only."""
        version = _rules(room_version)
        event_id, pdu = await self._valid(pdu, version)
        if await self._known([event_id]):
            return Received(event_id, "duplicate")
        room_id = self._room_id(pdu, event_id, version)
        status, reason = "outlier", None
        try:
            check_event_allowed(pdu, await self._auth_map(pdu, version, room_id))
        except AuthError as exc:
            status, reason = "rejected", exc.message
        async with self.events.db.transaction() as conn:
            await self.graph.insert_graph_event(conn, event_id, pdu, room_id, status, reason, None,
                                                self.clock.now_ms())
        return Received(event_id, status, reason)

    @staticmethod
    def _room_id(pdu: JsonDict, event_id: str, version: RoomVersion) -> str:
        if pdu.get("type") == "m.room.create" and version.room_id_from_create:
            return room_id_for_create(event_id)
        room_id = pdu.get("room_id")
        if not isinstance(room_id, str):
            raise MatrixError(400, Codes.BAD_JSON, "PDU has no room_id")
        return room_id

    async def receive(self, room_version: str, pdu: JsonDict) -> Received:
        """An event with its place in the graph; its prev and auth events must be known."""
        version = _rules(room_version)
        event_id, pdu = await self._valid(pdu, version)
        if await self._known([event_id]):
            return Received(event_id, "duplicate")
        room_id = self._room_id(pdu, event_id, version)
        prevs = reference_ids(pdu.get("prev_events"))
        known_prevs = await self._known(prevs)
        missing = [p for p in prevs if p not in known_prevs or known_prevs[p].status == "outlier"
                   or known_prevs[p].state_group is None]  # no state known after it (e.g. join state)
        if missing:
            raise MissingEvents(missing)
        before = await self.resolve_states(
            version, [await self.graph.state_ids(known_prevs[p].state_group) for p in prevs])
        try:
            check_event_allowed(pdu, await self._auth_map(pdu, version, room_id))
            check_event_allowed(pdu, await self._state_map(before, pdu, version))
        except AuthError as exc:
            # A rejected event changes no state: the state after it is the state before.
            return await self._store_aside(event_id, pdu, room_id, "rejected", exc.message, before, known_prevs)
        after = dict(before)
        if "state_key" in pdu:
            after[_key(pdu)] = event_id
        head = await self.events.room_head(room_id)
        if head is not None:
            current = await self._soft_fail_state(version, head.state_group, before)
            try:
                check_event_allowed(pdu, await self._state_map(current, pdu, version))
            except AuthError as exc:
                return await self._store_aside(event_id, pdu, room_id, "soft_failed", exc.message, after,
                                               known_prevs)
        return await self._accept(event_id, pdu, room_id, version, after, known_prevs)

    async def receive_at_state(self, room_version: str, pdu: JsonDict, before: StateIds) -> Received:
        """An event whose state before it is known from elsewhere (``send_join``'s answer, a remote
        server's ``state_ids`` over a gap): checks 1-4 against ``before``, whose events must all be
        known.  Outliers of ``before`` join the room's stream (as the state a joining client is
        shown); an unknown room is created (the join of a room this server was not in)."""
        version = _rules(room_version)
        event_id, pdu = await self._valid(pdu, version)
        if await self._known([event_id]):
            return Received(event_id, "duplicate")
        room_id = self._room_id(pdu, event_id, version)
        known = await self._known(list(before.values()))
        missing = [e for e in before.values() if e not in known]
        if missing:
            raise MissingEvents(missing)
        if any(e.room_id != room_id or e.status == "rejected" for e in known.values()):
            raise MatrixError(400, Codes.BAD_JSON, "The state names events of another room or rejected events")
        try:
            check_event_allowed(pdu, await self._auth_map(pdu, version, room_id))
            check_event_allowed(pdu, await self._state_map(before, pdu, version))
        except AuthError as exc:
            return await self._store_aside(event_id, pdu, room_id, "rejected", exc.message, None)
        after = dict(before)
        if "state_key" in pdu:
            after[_key(pdu)] = event_id
        head = await self.events.room_head(room_id)
        if head is not None and head.state_group is not None:
            try:
                check_event_allowed(pdu, await self._state_map(
                    await self._soft_fail_state(version, head.state_group, before), pdu, version))
            except AuthError as exc:
                return await self._store_aside(event_id, pdu, room_id, "soft_failed", exc.message, after)
        promote = sorted((e for e in known.values() if e.status == "outlier"), key=lambda e: e.depth)
        return await self._accept(event_id, pdu, room_id, version, after, {}, promote)

    async def _promote(self, writer: RoomWriter, outliers: list[GraphEvent], touched: set[str]) -> None:
        """Move state outliers into the room's stream, before the event that needs them as state."""
        for outlier, pos in zip(outliers, writer.positions, strict=False):
            pdu = outlier.pdu
            membership = pdu["content"].get("membership") if pdu.get("type") == "m.room.member" else None
            await self.graph.drop_outlier(writer.conn, outlier.event_id)
            await writer.insert_event(StoredEvent(
                stream_pos=pos, event_id=outlier.event_id, room_id=writer.room_id, type=str(pdu["type"]),
                state_key=pdu.get("state_key"), sender=str(pdu["sender"]),
                membership=membership if isinstance(membership, str) else None, pdu=pdu))
            if isinstance(membership, str) and isinstance(pdu.get("state_key"), str):
                touched.add(pdu["state_key"])
                await writer.set_membership(pdu["state_key"], membership, outlier.event_id, pos,
                                            pos if membership == "join" else None)

    async def _soft_fail_state(self, version: RoomVersion, current_group: int | None, before: StateIds) -> StateIds:
        """What check 4 tests against: the current state resolved with the state before the event
        (so an event over a gap, whose state this server just learnt, is not judged by the old state)."""
        current = await self.graph.state_ids(current_group)
        return await self.resolve_states(version, [current, before]) if before else current

    async def _store_aside(self, event_id: str, pdu: JsonDict, room_id: str, status: str, reason: str | None,
                           after: StateIds | None, prevs: dict[str, GraphEvent] | None = None) -> Received:
        async with self.events.write(room_id, 1) as writer:
            group = None
            if after is not None:
                group = await self._group_for(writer, (await writer.allocate())[0], after, prevs or {})
            await self.graph.insert_graph_event(writer.conn, event_id, pdu, room_id, status, reason, group,
                                                self.clock.now_ms())
            await self.graph.add_edges(writer.conn, room_id, event_id, reference_ids(pdu.get("prev_events")))
        return Received(event_id, status, reason)

    async def _group_for(self, writer: RoomWriter, pos: int, after: StateIds,
                         prevs: dict[str, GraphEvent]) -> int | None:
        """A state group holding ``after``: a prev event's group if equal, else a delta over one."""
        parent = next((p.state_group for p in prevs.values() if p.state_group is not None), None)
        base = await self.graph.state_ids(parent, writer.conn)
        changes = {k: v for k, v in after.items() if base.get(k) != v}
        if not changes and parent is not None and set(base) == set(after):
            return parent
        await self.graph.add_state_group(writer.conn, pos, writer.room_id, parent if set(base) <= set(after)
                                         else None, changes if set(base) <= set(after) else after)
        return pos

    async def _accept(self, event_id: str, pdu: JsonDict, room_id: str, version: RoomVersion, after: StateIds,
                      prevs: dict[str, GraphEvent], promote: list[GraphEvent] | None = None) -> Received:
        now = self.clock.now_ms()
        touched: set[str] = set()
        promote = promote or []
        async with self.events.write(room_id, 1 + len(promote)) as writer:
            head = await writer.lock_room()
            if head is None:
                create = await self._known([after[CREATE]], writer.conn) if CREATE in after else {}
                if pdu.get("type") != "m.room.create" and not create:
                    raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
                creator = next(iter(create.values())).pdu["sender"] if create else pdu["sender"]
                head = await writer.create_room(version.identifier, str(creator), False, now)
            await self._promote(writer, promote, touched)
            pos = writer.positions[-1]  # allocated under the room's lock
            group = await self._group_for(writer, pos, after, prevs)
            membership = pdu["content"].get("membership") if pdu["type"] == "m.room.member" else None
            event = StoredEvent(
                stream_pos=pos, event_id=event_id, room_id=room_id, type=str(pdu["type"]),
                state_key=pdu.get("state_key"), sender=str(pdu["sender"]),
                membership=membership if isinstance(membership, str) else None, pdu=pdu, state_group=group,
            )
            await writer.insert_event(event)
            if event.type == "m.room.redaction" and (target_id := redacts_of(pdu)) is not None:
                await apply_redaction(writer, await self.events.get(target_id), event_id, pdu, version,
                                      await self._state_map(after, pdu, version))
            old_current = await current_state_rows(writer)  # after the insert's own upsert
            referenced = await self.graph.is_referenced(event_id, writer.conn)
            await self.graph.replace_extremities(writer.conn, room_id, await self._ancestors_to_drop(prevs),
                                                 [] if referenced else [event_id])
            extremities = await self.graph.extremities(room_id, writer.conn)
            groups = await self.graph.get_graph_events([e for e, _ in extremities], writer.conn)
            states = [await self.graph.state_ids(g.state_group, writer.conn) for g in groups.values()]
            current = await self.resolve_states(version, states, writer.conn) if states else after
            current_group = group
            if len(groups) > 1 or (groups and next(iter(groups)) != event_id):
                current_group = -pos  # the resolved current state gets its own group
                await self.graph.add_state_group(writer.conn, -pos, room_id, None, current)
            own = _key(pdu) if pdu["type"] == "m.room.member" and current.get(_key(pdu)) == event_id else None
            for key in set(old_current) | set(current):
                if old_current.get(key) != current.get(key) or key == own:  # own: upserted by the insert
                    await set_state_row(writer, key, current.get(key))
                    if key[0] == "m.room.member":
                        touched.add(key[1])
                        await self._set_membership(writer, key[1], current.get(key))
            depth = max(head.last_depth, int(pdu["depth"]))
            await writer.set_head(event_id, depth, pos, current_group)
        touched.update(await self.events_joined(room_id))
        await self.notifier.notify(touched, "events", pos)
        return Received(event_id, "accepted")

    async def _ancestors_to_drop(self, prevs: dict[str, GraphEvent]) -> list[str]:
        """The prev events, and the ancestors reached through prevs outside the timeline (a soft-failed
        or rejected prev does not replace its own prevs as extremities, but the accepted event has seen
        them): none of these can stay a forward extremity, whatever the order events came in."""
        out = list(prevs)
        stack = [e for e in prevs.values() if e.status != "timeline"]
        seen = set(out)
        while stack:
            event = stack.pop()
            parents = [p for p in reference_ids(event.pdu.get("prev_events")) if p not in seen]
            seen.update(parents)
            out.extend(parents)
            stack.extend(e for e in (await self._known(parents)).values() if e.status != "timeline")
        return out

    async def _set_membership(self, writer: RoomWriter, user_id: str, event_id: str | None) -> None:
        if event_id is None:
            return
        found = await self.graph.get_graph_events([event_id], writer.conn)
        event = found.get(event_id)
        if event is None or event.stream_pos is None:
            return
        membership = str((event.pdu.get("content") or {}).get("membership", "leave"))
        row = await writer.membership_row(user_id)
        joined_since = None
        if membership == "join":
            was = row is not None and row["membership"] == "join" and row["joined_since"] is not None
            joined_since = int(row["joined_since"]) if was and row else event.stream_pos
        await writer.set_membership(user_id, membership, event_id, event.stream_pos, joined_since)

    async def events_joined(self, room_id: str) -> list[str]:
        rows = await self.events.db.fetch(
            "SELECT user_id FROM room_memberships WHERE room_id = ? AND membership = 'join'", (room_id,))
        return [str(r["user_id"]) for r in rows]

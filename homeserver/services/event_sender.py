"""Builds, authorises and persists room events: the one write path for every room event.

``EventSender.send`` runs everything for a batch of events of one room in a
single transaction: positions in the ``events`` stream first (serialising
writers), then the room's forward extremity and the auth state are read,
each event is built as a signed PDU of the room's version referring to the
forward extremities (at most :data:`MAX_PREV_EVENTS`; later events of the
batch to the previous one), checked against the auth rules and stored with
its state group, graph edges, state and membership side effects.  After
the commit the concerned users' long-polls are woken.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.event_auth import CREATE, auth_types_for_event, check_event_allowed
from homeserver.services.events import ROOM_VERSION, EventSpec, build_pdu, room_id_for_create
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.signing_key import SigningKey
from homeserver.storage.events import DuplicateTxn, EventRepository, RoomWriter, StoredEvent
from homeserver.storage.rooms import RoomRepository

JsonDict = dict[str, Any]
StateCache = dict[tuple[str, str], StoredEvent]
# Extra checks run inside the write transaction against the current state.
Precheck = Callable[[EventSpec, StateCache], None]
# The spec suggests referencing a bounded number of forward extremities.
MAX_PREV_EVENTS = 10
# Called after the commit with the room, its new events and its joined members.
CommitListener = Callable[[str, list[StoredEvent], list[str]], Awaitable[None]]
# Further writes in the same transaction, after the events were stored.
AfterInsert = Callable[[RoomWriter, list[StoredEvent]], Awaitable[None]]


@dataclass(frozen=True)
class Txn:
    user_id: str
    device_id: str
    txn_id: str


@dataclass(frozen=True)
class NewRoom:
    creator: str
    is_direct: bool
    room_version: str = ROOM_VERSION


def new_room_id(server_name: str) -> str:
    return f"!{secrets.token_urlsafe(18).replace('-', 'a').replace('_', 'b')}:{server_name}"


class EventSender:
    def __init__(self, events: EventRepository, rooms: RoomRepository, signing_key: SigningKey,
                 server_name: str, clock: Clock, notifier: Notifier) -> None:
        self.events = events
        self.rooms = rooms
        self.signing_key = signing_key
        self.server_name = server_name
        self.clock = clock
        self.notifier = notifier
        self._listeners: list[CommitListener] = []
        # Called with the seconds each successful write took (read by /metrics).
        self.persist_observers: list[Callable[[float], None]] = []

    def on_committed(self, listener: CommitListener) -> None:
        self._listeners.append(listener)

    async def send(self, room_id: str, specs: Sequence[EventSpec], txn: Txn | None = None,
                   new_room: NewRoom | None = None, precheck: Precheck | None = None,
                   extra_notify: Sequence[str] = (), after: AfterInsert | None = None) -> list[StoredEvent]:
        """Persist ``specs`` in order; return the stored events.

        With ``txn`` (whose id the caller looked up already) a concurrent request
        that stored the same transaction id first wins: its event is returned.
        """
        started = time.perf_counter()
        try:
            stored = await self._write(room_id, specs, txn, new_room, precheck, after)
            for observe in self.persist_observers:
                observe(time.perf_counter() - started)
        except DuplicateTxn:
            assert txn is not None
            existing = await self.events.txn_event_id(txn.user_id, txn.device_id, txn.txn_id)
            if existing is None:
                raise
            return await self._existing(existing)
        members = await self.rooms.joined_user_ids(room_id)
        also = {e.state_key for e in stored if e.type == "m.room.member" and e.state_key}
        also.update(extra_notify)
        await self.notifier.notify_room(room_id, members, also, "events",
                                        max((e.stream_pos for e in stored), default=None))
        for listener in self._listeners:
            await listener(room_id, stored, members)
        return stored

    async def _existing(self, event_id: str) -> list[StoredEvent]:
        event = await self.events.get(event_id)
        if event is None:
            raise MatrixError(404, Codes.NOT_FOUND, "The event of this transaction no longer exists")
        return [event]

    async def _write(self, room_id: str, specs: Sequence[EventSpec], txn: Txn | None,
                     new_room: NewRoom | None, precheck: Precheck | None,
                     after: AfterInsert | None) -> list[StoredEvent]:
        now = self.clock.now_ms()
        async with self.events.write(room_id, len(specs)) as writer:
            prebuilt: tuple[str, JsonDict] | None = None
            if new_room is not None:
                version = ROOM_VERSIONS[new_room.room_version]
                if version.room_id_from_create:
                    # v12: the room id is the hash of the create event, so build that first.
                    prebuilt = self._build(specs[0], "", [], [], 1, now, version, {})
                    # One user creating rooms of equal create content within one millisecond
                    # would get one room id: the later create event is stamped a millisecond on.
                    # The id is claimed by its insert, so concurrent writers cannot share it.
                    while True:
                        writer.room_id = room_id_for_create(prebuilt[0])
                        created = await writer.try_create_room(new_room.room_version, new_room.creator,
                                                               new_room.is_direct, now)
                        if created is not None:
                            head = created
                            break
                        now += 1
                        prebuilt = self._build(specs[0], "", [], [], 1, now, version, {})
                else:
                    head = await writer.create_room(new_room.room_version, new_room.creator,
                                                    new_room.is_direct, now)
            else:
                found = await writer.lock_room()
                if found is None or found.purged:
                    raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
                head = found
                version = ROOM_VERSIONS[head.room_version]
            state = await self._load_state(writer, specs, version)
            referenced = [event_id for event_id, _ in head.extremities[:MAX_PREV_EVENTS]]
            prev = list(referenced)
            depth = max([head.last_depth, *(d for _, d in head.extremities)])
            hashes: dict[str, JsonDict] = {}
            if version.event_format == "v1":
                hashes = {e.event_id: dict(e.pdu.get("hashes") or {}) for e in state.values()}
                for event_id, known in (await writer.graph.get_graph_events(prev, writer.conn)).items():
                    hashes[event_id] = dict(known.pdu.get("hashes") or {})
            group = head.state_group
            stored: list[StoredEvent] = []
            for spec, pos in zip(specs, writer.positions, strict=True):
                event = await self._persist_one(writer, spec, pos, state, prev, depth + 1, now, txn, precheck,
                                                version, group, hashes, prebuilt)
                prebuilt = None
                stored.append(event)
                prev = [event.event_id]
                hashes[event.event_id] = dict(event.pdu.get("hashes") or {})
                group = event.state_group
                depth += 1
            await writer.graph.replace_extremities(writer.conn, writer.room_id, referenced, [stored[-1].event_id])
            await writer.set_head(stored[-1].event_id, depth, stored[-1].stream_pos, group)
            if after is not None:
                await after(writer, stored)
            if txn is not None:
                await writer.record_txn(txn.user_id, txn.device_id, txn.txn_id, stored[-1].event_id, now)
        return stored

    def _build(self, spec: EventSpec, room_id: str, prev: list[str], auth: list[str], depth: int, now: int,
               version: RoomVersion, hashes: dict[str, JsonDict]) -> tuple[str, JsonDict]:
        return build_pdu(spec, room_id, prev, auth, depth, now, self.server_name, self.signing_key.version,
                         self.signing_key.private_key, version, hashes)

    async def _load_state(self, writer: RoomWriter, specs: Sequence[EventSpec], version: RoomVersion) -> StateCache:
        keys: list[tuple[str, str]] = [CREATE]
        for spec in specs:
            keys += auth_types_for_event(spec.type, spec.sender, spec.state_key, spec.content, version)
            if spec.state_key is not None:
                keys.append((spec.type, spec.state_key))
        return await writer.load_state(keys)

    async def _persist_one(self, writer: RoomWriter, spec: EventSpec, pos: int, state: StateCache,
                           prev: list[str], depth: int, now: int, txn: Txn | None,
                           precheck: Precheck | None, version: RoomVersion, group: int | None,
                           hashes: dict[str, JsonDict], prebuilt: tuple[str, JsonDict] | None) -> StoredEvent:
        auth_keys = auth_types_for_event(spec.type, spec.sender, spec.state_key, spec.content, version)
        auth_events = [state[k] for k in auth_keys if k in state]
        if prebuilt is not None:
            event_id, pdu = prebuilt
        else:
            event_id, pdu = self._build(spec, writer.room_id, prev, [e.event_id for e in auth_events], depth, now,
                                        version, hashes)
        auth_state = {k: state[k].pdu for k in [CREATE, *auth_keys] if k in state}
        check_event_allowed(pdu, auth_state)
        if precheck is not None:
            precheck(spec, state)
        replaced = state.get((spec.type, spec.state_key)) if spec.state_key is not None else None
        membership = spec.content.get("membership") if spec.type == "m.room.member" else None
        own_txn = txn is not None and txn.user_id == spec.sender
        event = StoredEvent(
            stream_pos=pos, event_id=event_id, room_id=writer.room_id, type=spec.type,
            state_key=spec.state_key, sender=spec.sender,
            membership=membership if isinstance(membership, str) else None, pdu=pdu,
            txn_device=txn.device_id if own_txn and txn else None,
            txn_id=txn.txn_id if own_txn and txn else None,
            replaces_state=replaced.event_id if replaced else None,
            prev_content=replaced.content if replaced else None,
            prev_sender=replaced.sender if replaced else None,
            state_group=group,
        )
        if spec.state_key is not None:
            await writer.graph.add_state_group(writer.conn, pos, writer.room_id, group,
                                               {(spec.type, spec.state_key): event_id})
            event.state_group = pos
        await writer.insert_event(event)
        if event.membership is not None and spec.state_key is not None:
            was_joined = replaced is not None and replaced.membership == "join"
            joined_since: int | None = None
            if event.membership == "join":
                row = await writer.membership_row(spec.state_key) if was_joined else None
                joined_since = int(row["joined_since"]) if row and row["joined_since"] is not None else pos
            await writer.set_membership(spec.state_key, event.membership, event_id, pos, joined_since)
        if spec.state_key is not None:
            state[(spec.type, spec.state_key)] = event
        return event

"""Room events, current room state and memberships: the write transaction and the reads.

Every write goes through :class:`RoomWriter`, opened by
:meth:`EventRepository.write`: one transaction that first reserves positions
in the ``events`` stream (taking the stream's row lock until commit, see
``streams.py``), then locks and reads the room's forward extremity, so that
events of a room are chained and numbered in commit order.  Auth state is
read inside the same transaction.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from common.canonical_json import encode_canonical_json
from homeserver.storage.database import Database, Row
from homeserver.storage.graph import GraphRepository
from homeserver.storage.relation_rows import record_relation
from homeserver.storage.streams import StreamRepository

JsonDict = dict[str, Any]

EVENT_COLUMNS = (
    "stream_pos, event_id, room_id, type, state_key, sender, membership, depth, origin_server_ts, "
    "pdu, txn_device, txn_id, replaces_state, prev_content, prev_sender, redacted_by, state_group"
)


def _cols(prefix: str) -> str:
    return ", ".join(f"{prefix}.{c.strip()}" for c in EVENT_COLUMNS.split(","))


class DuplicateTxn(Exception):
    """A concurrent request stored the same transaction id first."""


@dataclass
class StoredEvent:
    stream_pos: int
    event_id: str
    room_id: str
    type: str
    state_key: str | None
    sender: str
    membership: str | None
    pdu: JsonDict
    txn_device: str | None = None
    txn_id: str | None = None
    replaces_state: str | None = None
    prev_content: JsonDict | None = None
    prev_sender: str | None = None
    redacted_by: str | None = None
    # The state group holding the room state after this event (see graph.py).
    state_group: int | None = None

    @property
    def content(self) -> JsonDict:
        content = self.pdu.get("content")
        return content if isinstance(content, dict) else {}

    @property
    def is_state(self) -> bool:
        return self.state_key is not None


def event_from_row(row: Row) -> StoredEvent:
    prev = row.get("prev_content")
    return StoredEvent(
        stream_pos=int(row["stream_pos"]),
        event_id=str(row["event_id"]),
        room_id=str(row["room_id"]),
        type=str(row["type"]),
        state_key=None if row["state_key"] is None else str(row["state_key"]),
        sender=str(row["sender"]),
        membership=row.get("membership"),
        pdu=json.loads(row["pdu"]),
        txn_device=row.get("txn_device"),
        txn_id=row.get("txn_id"),
        replaces_state=row.get("replaces_state"),
        prev_content=json.loads(prev) if prev else None,
        prev_sender=row.get("prev_sender"),
        redacted_by=row.get("redacted_by"),
        state_group=None if row.get("state_group") is None else int(row["state_group"]),
    )


@dataclass
class RoomHead:
    room_id: str
    room_version: str
    creator: str
    is_direct: bool
    last_event_id: str | None
    last_depth: int
    purged: bool
    state_group: int | None = None
    # Forward extremities (event_id, depth), deepest first; read by RoomWriter.lock_room.
    extremities: list[tuple[str, int]] = field(default_factory=list)


def reference_ids(refs: Any) -> list[str]:
    """Event ids of a PDU's ``prev_events`` (plain ids, or ``[id, hashes]`` in v1/v2)."""
    out: list[str] = []
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, str):
            out.append(ref)
        elif isinstance(ref, list) and ref and isinstance(ref[0], str):
            out.append(ref[0])
    return out


def _head(row: Row) -> RoomHead:
    return RoomHead(
        str(row["room_id"]), str(row["room_version"]), str(row["creator"]), bool(row["is_direct"]),
        row["last_event_id"], int(row["last_depth"]), bool(row["purged"]),
        None if row.get("state_group") is None else int(row["state_group"]),
    )


def _placeholders(n: int) -> str:
    return ", ".join("?" for _ in range(n))


def type_clause(column: str, types: Sequence[str] | None, not_types: Sequence[str] | None) -> tuple[str, list[Any]]:
    """SQL for a filter's ``types``/``not_types`` (``*`` is a wildcard)."""
    parts: list[str] = []
    params: list[Any] = []

    def one(pattern: str) -> tuple[str, str]:
        if "*" in pattern:
            escaped = pattern.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            return f"{column} LIKE ? ESCAPE '!'", escaped.replace("*", "%")
        return f"{column} = ?", pattern

    if types is not None:
        if not types:
            return "1 = 0", []
        ors = []
        for pattern in types:
            sql, value = one(pattern)
            ors.append(sql)
            params.append(value)
        parts.append("(" + " OR ".join(ors) + ")")
    for pattern in not_types or ():
        sql, value = one(pattern)
        parts.append(f"NOT ({sql})")
        params.append(value)
    return (" AND ".join(parts) or "1 = 1"), params


class RoomWriter:
    """One write transaction on one room (see the module docstring)."""

    def __init__(self, db: Database, conn: BaseDBAsyncClient, room_id: str, count: int,
                 graph: GraphRepository, streams: StreamRepository) -> None:
        self.db = db
        self.graph = graph
        self.conn = conn
        self.room_id = room_id
        self.count = count
        self.streams = streams
        # The ``events`` positions of this write: allocated once the room is locked
        # (or created), so a room's writers take their positions in commit order.
        self.positions: list[int] = []
        self.claimed: list[int] = []
        self.head: RoomHead | None = None

    async def allocate(self) -> list[int]:
        """This write's positions (several writers: claimed now, under the room's lock)."""
        if not self.positions:
            claimed = await self.streams.claim("events", self.count)
            self.claimed = claimed or []
            last = await self.streams.advance(self.conn, "events", self.count, claimed)
            self.positions = list(range(last - self.count + 1, last + 1))
        return self.positions

    async def lock_room(self) -> RoomHead | None:
        if self.db.dialect == "mysql":
            return await self._lock_room_row()
        # SQLite (one writer at a time anyway): one statement for the room row and its
        # forward extremities (the hot path of every send).
        lock = ""
        rows = await self.db.fetch(
            "SELECT r.room_id, r.room_version, r.creator, r.is_direct, r.last_event_id, r.last_depth, r.purged, "
            "r.state_group, x.event_id AS extremity FROM rooms r "
            "LEFT JOIN room_extremities x ON x.room_id = r.room_id "
            f"WHERE r.room_id = ? ORDER BY x.event_id{lock}",
            (self.room_id,),
            conn=self.conn,
        )
        if not rows:
            return None
        self.head = _head(rows[0])
        # Depths are not read here: the room's greatest depth (last_depth) bounds them all.
        self.head.extremities = [(str(r["extremity"]), 0) for r in rows if r["extremity"] is not None]
        await self.allocate()
        return self.head

    async def _lock_room_row(self) -> RoomHead | None:
        """MySQL: lock the ``rooms`` row only, then read the extremities without locks.

        A locking read of a room's extremities takes next-key locks up to the next
        room's first row, and that room's writer needs the gap to insert its new
        extremity: writers of neighbouring rooms deadlocked.  The plain read comes
        after the lock and is the transaction's first consistent read (``advance``
        reads the counter with a locking read), so it sees the room's last writer.
        """
        row = await self.db.fetch_one(
            "SELECT room_id, room_version, creator, is_direct, last_event_id, last_depth, purged, state_group "
            "FROM rooms WHERE room_id = ? FOR UPDATE", (self.room_id,), conn=self.conn,
        )
        if row is None:
            return None
        self.head = _head(row)
        rows = await self.db.fetch(
            "SELECT event_id FROM room_extremities WHERE room_id = ? ORDER BY event_id", (self.room_id,),
            conn=self.conn,
        )
        self.head.extremities = [(str(r["event_id"]), 0) for r in rows]
        await self.allocate()
        return self.head

    async def room_id_taken(self, room_id: str) -> bool:
        row = await self.db.fetch_one("SELECT 1 AS taken FROM rooms WHERE room_id = ?", (room_id,), conn=self.conn)
        return row is not None

    async def try_create_room(self, room_version: str, creator: str, is_direct: bool,
                              now_ms: int) -> RoomHead | None:
        """:meth:`create_room`, or None when another writer holds this room id already."""
        if await self.room_id_taken(self.room_id):
            return None
        try:
            return await self.create_room(room_version, creator, is_direct, now_ms)
        except IntegrityError:  # inserted by a concurrent writer since (several event writers)
            return None

    async def create_room(self, room_version: str, creator: str, is_direct: bool, now_ms: int) -> RoomHead:
        await self.db.execute(
            "INSERT INTO rooms (room_id, room_version, creator, is_direct, created_ts, last_depth, last_pos, purged) "
            "VALUES (?, ?, ?, ?, ?, 0, 0, 0)",
            (self.room_id, room_version, creator, is_direct, now_ms),
            conn=self.conn,
        )
        self.head = RoomHead(self.room_id, room_version, creator, is_direct, None, 0, False)
        await self.allocate()
        return self.head

    async def load_state(self, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredEvent]:
        """Current state events for the given (type, state_key) pairs."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return {}
        cond = " OR ".join("(rs.type = ? AND rs.state_key = ?)" for _ in wanted)
        params: list[Any] = [self.room_id]
        for event_type, state_key in wanted:
            params += [event_type, state_key]
        rows = await self.db.fetch(
            f"SELECT {_cols('e')} FROM room_state rs JOIN events e ON e.event_id = rs.event_id "
            f"WHERE rs.room_id = ? AND ({cond})",
            params,
            conn=self.conn,
        )
        out = {}
        for row in rows:
            event = event_from_row(row)
            out[(event.type, event.state_key or "")] = event
        return out

    async def membership_row(self, user_id: str) -> Row | None:
        return await self.db.fetch_one(
            "SELECT membership, joined_since FROM room_memberships WHERE room_id = ? AND user_id = ?",
            (self.room_id, user_id),
            conn=self.conn,
        )

    async def insert_event(self, event: StoredEvent) -> None:
        pdu = event.pdu
        await self.db.execute(
            f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({_placeholders(17)})",
            (
                event.stream_pos, event.event_id, event.room_id, event.type, event.state_key,
                event.sender, event.membership, int(pdu["depth"]), int(pdu["origin_server_ts"]),
                encode_canonical_json(pdu).decode("utf-8"), event.txn_device, event.txn_id,
                event.replaces_state,
                None if event.prev_content is None else json.dumps(event.prev_content),
                event.prev_sender, None, event.state_group,
            ),
            conn=self.conn,
        )
        await self.graph.add_edges(self.conn, event.room_id, event.event_id, reference_ids(pdu.get("prev_events")))
        await record_relation(self.db, self.conn, event.event_id, event.room_id, event.type, event.sender,
                              event.stream_pos, pdu)
        if event.state_key is not None:
            await self.db.execute(
                self.db.upsert_sql(
                    "room_state", ["room_id", "type", "state_key"],
                    ["room_id", "type", "state_key", "event_id", "stream_pos"],
                ),
                (event.room_id, event.type, event.state_key, event.event_id, event.stream_pos),
                conn=self.conn,
            )

    async def set_membership(self, user_id: str, membership: str, event_id: str, pos: int,
                             joined_since: int | None) -> None:
        await self.db.execute(
            self.db.upsert_sql(
                "room_memberships", ["room_id", "user_id"],
                ["room_id", "user_id", "membership", "event_id", "stream_pos", "joined_since", "forgotten"],
            ),
            (self.room_id, user_id, membership, event_id, pos, joined_since, False),
            conn=self.conn,
        )

    async def set_head(self, event_id: str, depth: int, pos: int, state_group: int | None) -> None:
        """The latest event, the room's greatest depth and its current state group."""
        await self.db.execute(
            "UPDATE rooms SET last_event_id = ?, last_depth = ?, last_pos = ?, state_group = ? WHERE room_id = ?",
            (event_id, depth, pos, state_group, self.room_id),
            conn=self.conn,
        )

    async def delete_state(self, event_type: str, state_key: str) -> None:
        await self.db.execute(
            "DELETE FROM room_state WHERE room_id = ? AND type = ? AND state_key = ?",
            (self.room_id, event_type, state_key), conn=self.conn,
        )

    async def record_txn(self, user_id: str, device_id: str, txn_id: str, event_id: str, now_ms: int) -> None:
        try:
            await self.db.execute(
                "INSERT INTO event_txns (user_id, device_id, txn_id, event_id, created_ts) VALUES (?, ?, ?, ?, ?)",
                (user_id, device_id, txn_id, event_id, now_ms),
                conn=self.conn,
            )
        except IntegrityError as exc:
            raise DuplicateTxn(txn_id) from exc

    async def redact(self, event_id: str, redacted_pdu: JsonDict, redacted_by: str,
                     redacted_prev_content: JsonDict | None) -> None:
        """Replace the stored PDU by its redacted form; keep nothing of the content."""
        await self.db.execute(
            "UPDATE events SET pdu = ?, redacted_by = ? WHERE event_id = ?",
            (encode_canonical_json(redacted_pdu).decode("utf-8"), redacted_by, event_id),
            conn=self.conn,
        )
        # Later state events carry the redacted one's content as prev_content.
        await self.db.execute(
            "UPDATE events SET prev_content = ? WHERE replaces_state = ?",
            (None if redacted_prev_content is None else json.dumps(redacted_prev_content), event_id),
            conn=self.conn,
        )


class EventRepository:
    def __init__(self, db: Database, streams: StreamRepository) -> None:
        self.db = db
        self.streams = streams
        self.graph = GraphRepository(db)

    @contextlib.asynccontextmanager
    async def write(self, room_id: str, count: int) -> AsyncIterator[RoomWriter]:
        """A transaction that will hold ``count`` fresh positions of the ``events`` stream.

        One writer (the default): the counter row is advanced first, its lock
        held to commit.  Several writers: the positions are claimed when the
        writer locks (or creates) its room, so two writers of one room take
        them in the order they commit.
        """
        writer: RoomWriter | None = None
        try:
            async with self.db.transaction() as conn:
                writer = RoomWriter(self.db, conn, room_id, count, self.graph, self.streams)
                if not self.streams.is_multi("events"):
                    await writer.allocate()
                yield writer
        except BaseException:
            # Readers wait below an open claim: release it (a committed claim is gone already).
            if writer is not None:
                await self.streams.abandon("events", writer.claimed)
            raise

    # ------------------------------------------------------------------ reads
    async def get(self, event_id: str) -> StoredEvent | None:
        row = await self.db.fetch_one(f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id = ?", (event_id,))
        return event_from_row(row) if row else None

    async def get_many(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        ids = list(dict.fromkeys(event_ids))
        out: dict[str, StoredEvent] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetch(
                f"SELECT {EVENT_COLUMNS} FROM events WHERE event_id IN ({_placeholders(len(chunk))})", chunk
            )
            for row in rows:
                event = event_from_row(row)
                out[event.event_id] = event
        return out

    async def txn_event_id(self, user_id: str, device_id: str, txn_id: str) -> str | None:
        row = await self.db.fetch_one(
            "SELECT event_id FROM event_txns WHERE user_id = ? AND device_id = ? AND txn_id = ?",
            (user_id, device_id, txn_id),
        )
        return str(row["event_id"]) if row else None

    async def room_head(self, room_id: str) -> RoomHead | None:
        row = await self.db.fetch_one(
            "SELECT room_id, room_version, creator, is_direct, last_event_id, last_depth, purged, state_group "
            "FROM rooms WHERE room_id = ?",
            (room_id,),
        )
        return _head(row) if row else None

    async def state_at_group(self, group: int | None) -> list[StoredEvent]:
        """The room state held by a state group (the state after the event that has it)."""
        ids = await self.graph.state_ids(group)
        found = await self.get_many(ids.values())
        return sorted(found.values(), key=lambda e: e.stream_pos)

    async def current_state(self, room_ids: Sequence[str], types: Sequence[str] | None = None
                            ) -> dict[str, list[StoredEvent]]:
        """Current state of several rooms in one query (optionally only some types)."""
        out: dict[str, list[StoredEvent]] = {r: [] for r in room_ids}
        ids = list(room_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            sql = (
                f"SELECT {_cols('e')} FROM room_state rs JOIN events e ON e.event_id = rs.event_id "
                f"WHERE rs.room_id IN ({_placeholders(len(chunk))})"
            )
            params: list[Any] = list(chunk)
            if types is not None:
                sql += f" AND rs.type IN ({_placeholders(len(types))})"
                params += list(types)
            for row in await self.db.fetch(sql + " ORDER BY e.stream_pos", params):
                event = event_from_row(row)
                out[event.room_id].append(event)
        return out

    async def state_event(self, room_id: str, event_type: str, state_key: str) -> StoredEvent | None:
        row = await self.db.fetch_one(
            f"SELECT {_cols('e')} FROM room_state rs JOIN events e ON e.event_id = rs.event_id "
            "WHERE rs.room_id = ? AND rs.type = ? AND rs.state_key = ?",
            (room_id, event_type, state_key),
        )
        return event_from_row(row) if row else None

    async def state_between(self, room_id: str, after: int, upto: int) -> list[StoredEvent]:
        """For each state key changed in (after, upto], its latest event there."""
        rows = await self.db.fetch(
            f"SELECT {_cols('e')} FROM events e JOIN ("
            "  SELECT type, state_key, MAX(stream_pos) AS mp FROM events"
            "  WHERE room_id = ? AND state_key IS NOT NULL AND stream_pos > ? AND stream_pos <= ?"
            "  GROUP BY type, state_key"
            ") m ON e.stream_pos = m.mp ORDER BY e.stream_pos",
            (room_id, after, upto),
        )
        return [event_from_row(r) for r in rows]

    async def member_changes(self, room_ids: Sequence[str], after: int, upto: int) -> list[StoredEvent]:
        """For each (room, user) whose membership changed in (after, upto], its latest
        ``m.room.member`` event there: :meth:`state_between` restricted to
        membership, for many rooms in one query."""
        ids = list(dict.fromkeys(room_ids))
        out: list[StoredEvent] = []
        if not ids or upto <= after:
            return out
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetch(
                f"SELECT {_cols('e')} FROM events e JOIN ("
                "  SELECT room_id, state_key, MAX(stream_pos) AS mp FROM events"
                f"  WHERE room_id IN ({_placeholders(len(chunk))}) AND type = 'm.room.member'"
                "  AND state_key IS NOT NULL AND stream_pos > ? AND stream_pos <= ?"
                "  GROUP BY room_id, state_key"
                ") m ON e.stream_pos = m.mp ORDER BY e.stream_pos",
                [*chunk, after, upto],
            )
            out.extend(event_from_row(r) for r in rows)
        return out

    async def state_at(self, room_id: str, upto: int) -> list[StoredEvent]:
        return await self.state_between(room_id, -1, upto)

    async def timelines(
        self, room_ids: Sequence[str], after: int, upto: int, limit: int,
        types: Sequence[str] | None = None, not_types: Sequence[str] | None = None,
        senders: Sequence[str] | None = None, not_senders: Sequence[str] | None = None,
    ) -> dict[str, list[StoredEvent]]:
        """Up to ``limit + 1`` latest events per room in (after, upto], oldest first."""
        out: dict[str, list[StoredEvent]] = {r: [] for r in room_ids}
        if not room_ids:
            return out
        tsql, tparams = type_clause("e.type", types, not_types)
        ssql, sparams = _sender_clause(senders, not_senders)
        ids = list(room_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetch(
                f"SELECT * FROM (SELECT {_cols('e')}, ROW_NUMBER() OVER "
                "(PARTITION BY e.room_id ORDER BY e.stream_pos DESC) AS rn FROM events e "
                f"WHERE e.room_id IN ({_placeholders(len(chunk))}) AND e.stream_pos > ? AND e.stream_pos <= ?"
                f" AND {tsql} AND {ssql}) x WHERE x.rn <= ? ORDER BY x.stream_pos",
                [*chunk, after, upto, *tparams, *sparams, limit + 1],
            )
            for row in rows:
                event = event_from_row(row)
                out[event.room_id].append(event)
        return out

    async def paginate(
        self, room_id: str, from_pos: int, direction: str, limit: int, to_pos: int | None,
        lower_bound: int, upper_bound: int,
        types: Sequence[str] | None = None, not_types: Sequence[str] | None = None,
        senders: Sequence[str] | None = None, not_senders: Sequence[str] | None = None,
    ) -> list[StoredEvent]:
        """Events of a room from a position: backwards (<= from) or forwards (> from).

        Only events in (lower_bound, upper_bound] are visible.
        """
        tsql, tparams = type_clause("type", types, not_types)
        ssql, sparams = _sender_clause(senders, not_senders, column="sender")
        if direction == "b":
            low = lower_bound if to_pos is None else max(lower_bound, to_pos)
            high = min(from_pos, upper_bound)
            sql = "stream_pos > ? AND stream_pos <= ? ORDER BY stream_pos DESC"
        else:
            low = from_pos if lower_bound < from_pos else lower_bound
            high = upper_bound if to_pos is None else min(upper_bound, to_pos)
            sql = "stream_pos > ? AND stream_pos <= ? ORDER BY stream_pos ASC"
        where = f"room_id = ? AND {tsql} AND {ssql} AND "
        rows = await self.db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE {where}{sql} LIMIT ?",
            [room_id, *tparams, *sparams, low, high, limit],
        )
        return [event_from_row(r) for r in rows]

    async def member_events(self, pairs: Iterable[tuple[str, str]]) -> dict[tuple[str, str], StoredEvent]:
        """Current m.room.member events for (room_id, user_id) pairs."""
        wanted = list(dict.fromkeys(pairs))
        out: dict[tuple[str, str], StoredEvent] = {}
        for start in range(0, len(wanted), 300):
            chunk = wanted[start:start + 300]
            cond = " OR ".join("(rs.room_id = ? AND rs.state_key = ?)" for _ in chunk)
            params: list[Any] = []
            for room_id, user_id in chunk:
                params += [room_id, user_id]
            rows = await self.db.fetch(
                f"SELECT {_cols('e')} FROM room_state rs JOIN events e ON e.event_id = rs.event_id "
                f"WHERE rs.type = 'm.room.member' AND ({cond})",
                params,
            )
            for row in rows:
                event = event_from_row(row)
                out[(event.room_id, event.state_key or "")] = event
        return out

    async def user_membership_events(self, user_id: str, after: int, upto: int) -> list[StoredEvent]:
        """The user's own membership events in (after, upto], oldest first."""
        rows = await self.db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE state_key = ? AND type = 'm.room.member' "
            "AND stream_pos > ? AND stream_pos <= ? ORDER BY stream_pos",
            (user_id, after, upto),
        )
        return [event_from_row(r) for r in rows]

    async def state_history(self, room_id: str, event_type: str, state_key: str, upto: int) -> list[StoredEvent]:
        """Every state event of one (type, state_key) in the room up to ``upto``, oldest first."""
        rows = await self.db.fetch(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE room_id = ? AND type = ? AND state_key = ? "
            "AND stream_pos <= ? ORDER BY stream_pos",
            (room_id, event_type, state_key, upto),
        )
        return [event_from_row(r) for r in rows]

    async def membership_at(self, room_id: str, user_id: str, upto: int) -> StoredEvent | None:
        row = await self.db.fetch_one(
            f"SELECT {EVENT_COLUMNS} FROM events WHERE state_key = ? AND type = 'm.room.member' "
            "AND room_id = ? AND stream_pos <= ? ORDER BY stream_pos DESC LIMIT 1",
            (user_id, room_id, upto),
        )
        return event_from_row(row) if row else None

    async def redaction_events(self, event_ids: Iterable[str]) -> dict[str, StoredEvent]:
        return await self.get_many(event_ids)

    async def purge_room(self, room_id: str, keep_event_ids: Sequence[str]) -> None:
        """Delete a room's events and state, keeping only the given (membership) events."""
        async with self.db.transaction() as conn:
            if keep_event_ids:
                await self.db.execute(
                    f"DELETE FROM events WHERE room_id = ? AND event_id NOT IN ({_placeholders(len(keep_event_ids))})",
                    [room_id, *keep_event_ids], conn=conn,
                )
            else:
                await self.db.execute("DELETE FROM events WHERE room_id = ?", (room_id,), conn=conn)
            await self.db.execute("DELETE FROM room_state WHERE room_id = ?", (room_id,), conn=conn)
            await self.graph.delete_room(conn, room_id)
            await self.db.execute("UPDATE rooms SET purged = 1 WHERE room_id = ?", (room_id,), conn=conn)

    async def delete_room_fully(self, room_id: str) -> None:
        async with self.db.transaction() as conn:
            await self.graph.delete_room(conn, room_id)
            for table in ("events", "room_state", "room_memberships", "remote_invite_state", "rooms"):
                await self.db.execute(f"DELETE FROM {table} WHERE room_id = ?", (room_id,), conn=conn)

    async def delete_txns_older_than(self, ts: int) -> int:
        return await self.db.execute("DELETE FROM event_txns WHERE created_ts < ?", (ts,))


def _sender_clause(senders: Sequence[str] | None, not_senders: Sequence[str] | None,
                   column: str = "e.sender") -> tuple[str, list[Any]]:
    parts: list[str] = []
    params: list[Any] = []
    if senders is not None:
        if not senders:
            return "1 = 0", []
        parts.append(f"{column} IN ({_placeholders(len(senders))})")
        params += list(senders)
    if not_senders:
        parts.append(f"{column} NOT IN ({_placeholders(len(not_senders))})")
        params += list(not_senders)
    return (" AND ".join(parts) or "1 = 1"), params


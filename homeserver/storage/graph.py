"""The event graph: prev-event edges, forward extremities, state groups and
events kept outside the timeline.

State groups hold the state *after* an event.  A group is either a full
snapshot (``prev_group`` NULL) or a delta over its ``prev_group``; after
:data:`SNAPSHOT_EVERY` deltas a snapshot is written, so reading any group is
one recursive query over at most that many groups (see ``docs/EVENT-GRAPH.md``
for why this shape).  A group's id is the stream position of the event that
created it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from common.canonical_json import encode_canonical_json
from homeserver.storage.database import Database

StateKey = tuple[str, str]
StateIds = dict[StateKey, str]
JsonDict = dict[str, Any]

SNAPSHOT_EVERY = 50
# A database connection (inside a write transaction) as services pass it along.
Connection = BaseDBAsyncClient


def _ph(n: int) -> str:
    return ", ".join("?" for _ in range(n))


@dataclass
class GraphEvent:
    """An event known to the graph: in the timeline or not (outlier, rejected, soft-failed)."""

    event_id: str
    room_id: str
    pdu: JsonDict
    depth: int
    state_group: int | None
    status: str  # "timeline" | "outlier" | "rejected" | "soft_failed"
    stream_pos: int | None = None


class GraphRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ------------------------------------------------------------ extremities and edges
    async def extremities(self, room_id: str, conn: BaseDBAsyncClient | None = None) -> list[tuple[str, int]]:
        """Forward extremities as (event_id, depth), deepest first."""
        rows = await self.db.fetch(
            "SELECT x.event_id, e.depth FROM room_extremities x JOIN events e ON e.event_id = x.event_id "
            "WHERE x.room_id = ? ORDER BY e.depth DESC, x.event_id",
            (room_id,), conn=conn,
        )
        return [(str(r["event_id"]), int(r["depth"])) for r in rows]

    async def replace_extremities(self, conn: BaseDBAsyncClient, room_id: str, remove: Sequence[str],
                                  add: Sequence[str]) -> None:
        if len(remove) == 1 and len(add) == 1:
            # The common case (a line): one statement.
            moved = await self.db.execute(
                "UPDATE room_extremities SET event_id = ? WHERE room_id = ? AND event_id = ?",
                (add[0], room_id, remove[0]), conn=conn,
            )
            if moved:
                return
        if remove:
            await self.db.execute(
                f"DELETE FROM room_extremities WHERE room_id = ? AND event_id IN ({_ph(len(remove))})",
                [room_id, *remove], conn=conn,
            )
        for event_id in add:
            await self.db.execute(self.db.insert_ignore_sql("room_extremities", ["room_id", "event_id"]),
                                  (room_id, event_id), conn=conn)

    async def add_edges(self, conn: BaseDBAsyncClient, room_id: str, event_id: str, prevs: Iterable[str]) -> None:
        for prev in dict.fromkeys(prevs):
            await self.db.execute(
                self.db.insert_ignore_sql("event_edges", ["event_id", "prev_event_id", "room_id"]),
                (event_id, prev, room_id), conn=conn,
            )

    async def is_referenced(self, event_id: str, conn: BaseDBAsyncClient | None = None) -> bool:
        row = await self.db.fetch_one("SELECT 1 AS x FROM event_edges WHERE prev_event_id = ? LIMIT 1",
                                      (event_id,), conn=conn)
        return row is not None

    # ------------------------------------------------------------ state groups
    async def delta_count(self, group: int | None, conn: BaseDBAsyncClient | None = None) -> int:
        if group is None:
            return 0
        row = await self.db.fetch_one("SELECT delta_count FROM state_groups WHERE state_group = ?", (group,),
                                      conn=conn)
        return int(row["delta_count"]) if row else 0

    async def state_ids(self, group: int | None, conn: BaseDBAsyncClient | None = None) -> StateIds:
        """The full state map of a group: one recursive query up its delta chain."""
        if group is None:
            return {}
        rows = await self.db.fetch(
            "WITH RECURSIVE chain(sg, n) AS ("
            " SELECT state_group, 0 FROM state_groups WHERE state_group = ?"
            " UNION ALL"
            " SELECT g.prev_group, c.n + 1 FROM state_groups g JOIN chain c ON g.state_group = c.sg"
            " WHERE g.prev_group IS NOT NULL"
            ") SELECT s.type, s.state_key, s.event_id, c.n FROM state_group_edits s JOIN chain c"
            " ON s.state_group = c.sg ORDER BY c.n DESC",
            (group,), conn=conn,
        )
        out: StateIds = {}
        for row in rows:  # oldest group first: newer edits overwrite
            out[(str(row["type"]), str(row["state_key"]))] = str(row["event_id"])
        return out

    async def add_state_group(self, conn: BaseDBAsyncClient, group: int, room_id: str, parent: int | None,
                              changes: Mapping[StateKey, str]) -> None:
        """Store the group ``parent + changes`` (a snapshot once the delta chain is long)."""
        count = await self.delta_count(parent, conn) + 1 if parent is not None else 0
        edits: Mapping[StateKey, str] = changes
        prev_group = parent
        if parent is not None and count >= SNAPSHOT_EVERY:
            full = await self.state_ids(parent, conn)
            full.update(changes)
            edits, prev_group, count = full, None, 0
        await self.db.execute(
            "INSERT INTO state_groups (state_group, room_id, prev_group, delta_count) VALUES (?, ?, ?, ?)",
            (group, room_id, prev_group, count), conn=conn,
        )
        for (event_type, state_key), event_id in edits.items():
            await self.db.execute(
                "INSERT INTO state_group_edits (state_group, type, state_key, event_id) VALUES (?, ?, ?, ?)",
                (group, event_type, state_key, event_id), conn=conn,
            )

    # ------------------------------------------------------------ events outside the timeline
    async def insert_graph_event(self, conn: BaseDBAsyncClient, event_id: str, pdu: JsonDict, room_id: str,
                                 status: str, reason: str | None, state_group: int | None, now_ms: int) -> None:
        await self.db.execute(
            "INSERT INTO graph_events (event_id, room_id, type, state_key, sender, depth, origin_server_ts, pdu, "
            "status, reason, state_group, received_ts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (event_id, room_id, str(pdu.get("type")), pdu.get("state_key"), str(pdu.get("sender")),
             int(pdu.get("depth", 0)), int(pdu.get("origin_server_ts", 0)),
             encode_canonical_json(pdu).decode("utf-8"), status, reason, state_group, now_ms),
            conn=conn,
        )

    async def drop_outlier(self, conn: BaseDBAsyncClient, event_id: str) -> bool:
        """Forget an event kept outside the timeline (it is being moved into the stream); False when it
        is not there (a concurrent write moved it first)."""
        return bool(await self.db.execute("DELETE FROM graph_events WHERE event_id = ?", (event_id,), conn=conn))

    async def get_graph_events(self, event_ids: Iterable[str], conn: BaseDBAsyncClient | None = None
                               ) -> dict[str, GraphEvent]:
        """Known events, timeline or not, by id."""
        ids = list(dict.fromkeys(event_ids))
        out: dict[str, GraphEvent] = {}
        for start in range(0, len(ids), 300):
            chunk = ids[start:start + 300]
            rows = await self.db.fetch(
                f"SELECT event_id, room_id, pdu, depth, state_group, stream_pos FROM events "
                f"WHERE event_id IN ({_ph(len(chunk))})", chunk, conn=conn,
            )
            for r in rows:
                out[str(r["event_id"])] = GraphEvent(
                    str(r["event_id"]), str(r["room_id"]), json.loads(r["pdu"]), int(r["depth"]),
                    None if r["state_group"] is None else int(r["state_group"]), "timeline", int(r["stream_pos"]))
            rest = [i for i in chunk if i not in out]
            if not rest:
                continue
            rows = await self.db.fetch(
                f"SELECT event_id, room_id, pdu, depth, state_group, status FROM graph_events "
                f"WHERE event_id IN ({_ph(len(rest))})", rest, conn=conn,
            )
            for r in rows:
                out[str(r["event_id"])] = GraphEvent(
                    str(r["event_id"]), str(r["room_id"]), json.loads(r["pdu"]), int(r["depth"]),
                    None if r["state_group"] is None else int(r["state_group"]), str(r["status"]))
        return out

    async def delete_room(self, conn: BaseDBAsyncClient, room_id: str) -> None:
        await self.db.execute(
            "DELETE FROM state_group_edits WHERE state_group IN "
            "(SELECT state_group FROM state_groups WHERE room_id = ?)", (room_id,), conn=conn,
        )
        for table in ("state_groups", "event_edges", "room_extremities", "graph_events"):
            await self.db.execute(f"DELETE FROM {table} WHERE room_id = ?", (room_id,), conn=conn)

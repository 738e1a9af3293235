"""A room's past fetched from other servers (``/backfill``), kept in the room's stream *below*
everything there.

Backfilled events get negative stream positions from a counter of their own
(the ``backfill`` row of ``stream_positions``), deepest first within a batch,
and each later batch (older history) lower again: ``/messages`` going
backwards reaches them after the oldest events this server had, while no
``/sync`` ever counts them as new.  They change no room state (``room_state``,
memberships) and have no state group; the graph knows their prev edges, so
their own missing prev events are the room's next backward extremities.
"""

from __future__ import annotations

from collections.abc import Sequence

from common.canonical_json import encode_canonical_json
from homeserver.storage.events import EVENT_COLUMNS, EventRepository, reference_ids

BACKFILL_STREAM = "backfill"


class HistoryRepository:
    def __init__(self, events: EventRepository) -> None:
        self.db = events.db
        self.graph = events.graph
        self.streams = events.streams

    async def backward_extremities(self, room_id: str, limit: int) -> list[str]:
        """Events the room's stream names as prev events but does not hold (unknown, or outliers)."""
        rows = await self.db.fetch(
            "SELECT DISTINCT ee.prev_event_id AS prev FROM event_edges ee "
            "LEFT JOIN events e ON e.event_id = ee.prev_event_id "
            "LEFT JOIN graph_events g ON g.event_id = ee.prev_event_id "
            "WHERE ee.room_id = ? AND e.event_id IS NULL AND (g.event_id IS NULL OR g.status = 'outlier') "
            "ORDER BY ee.prev_event_id LIMIT ?",
            (room_id, limit),
        )
        return [str(r["prev"]) for r in rows]

    async def insert(self, room_id: str, event_ids: Sequence[str]) -> int:
        """Move the room's checked outliers among ``event_ids`` into its history; how many moved."""
        async with self.db.transaction() as conn:
            found = await self.graph.get_graph_events(event_ids, conn)
            chosen = sorted((e for e in found.values() if e.status == "outlier" and e.room_id == room_id),
                            key=lambda e: (-e.depth, e.event_id))
            if not chosen:
                return 0
            last = await self.streams.advance(conn, BACKFILL_STREAM, len(chosen))
            first = last - len(chosen) + 1
            for offset, event in enumerate(chosen):
                pdu = event.pdu
                content = pdu.get("content")
                membership = content.get("membership") if isinstance(content, dict) and \
                    pdu.get("type") == "m.room.member" else None
                await self.graph.drop_outlier(conn, event.event_id)
                await self.db.execute(
                    f"INSERT INTO events ({EVENT_COLUMNS}) VALUES ({', '.join('?' * 17)})",
                    (-(first + offset), event.event_id, room_id, str(pdu.get("type")), pdu.get("state_key"),
                     str(pdu.get("sender")), membership if isinstance(membership, str) else None, event.depth,
                     int(pdu.get("origin_server_ts", 0)), encode_canonical_json(pdu).decode("utf-8"),
                     None, None, None, None, None, None, None),
                    conn=conn,
                )
                await self.graph.add_edges(conn, room_id, event.event_id, reference_ids(pdu.get("prev_events")))
        return len(chosen)

"""Rooms as an event graph: prev-event edges, forward extremities, state groups
(state after every event), and events kept outside the timeline (outliers,
rejected and soft-failed events).  See ``docs/EVENT-GRAPH.md``.

Existing rooms were lines (one forward extremity, ``rooms.last_event_id``);
they are converted losslessly: edges come from each PDU's ``prev_events``,
the extremity from ``last_event_id``, and every state event becomes a state
group holding its delta over the previous state event's group.
"""

from __future__ import annotations

from migrations.ddl import add_column, create_index, create_table


def _edges(dialect: str) -> str:
    if dialect == "sqlite":
        return (
            "INSERT INTO event_edges (event_id, prev_event_id, room_id) "
            "SELECT e.event_id, j.value, e.room_id FROM events e, json_each(e.pdu, '$.prev_events') j "
            "WHERE j.type = 'text'"
        )
    return (
        "INSERT INTO event_edges (event_id, prev_event_id, room_id) "
        "SELECT e.event_id, j.prev, e.room_id FROM events e, "
        "JSON_TABLE(e.pdu, '$.prev_events[*]' COLUMNS (prev VARCHAR(255) PATH '$')) AS j "
        "WHERE j.prev IS NOT NULL"
    )


def _event_groups(dialect: str) -> str:
    if dialect == "sqlite":
        return (
            "UPDATE events SET state_group = (SELECT MAX(p.stream_pos) FROM events p "
            "WHERE p.room_id = events.room_id AND p.state_key IS NOT NULL AND p.stream_pos <= events.stream_pos)"
        )
    return (
        "UPDATE events e JOIN (SELECT x.stream_pos AS pos, MAX(p.stream_pos) AS sg FROM events x "
        "JOIN events p ON p.room_id = x.room_id AND p.state_key IS NOT NULL AND p.stream_pos <= x.stream_pos "
        "GROUP BY x.stream_pos) m ON m.pos = e.stream_pos SET e.state_group = m.sg"
    )


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "event_edges",
            [("event_id", "id", "NOT NULL"), ("prev_event_id", "id", "NOT NULL"), ("room_id", "id", "NOT NULL")],
            primary_key=["event_id", "prev_event_id"],
        ),
        create_index(dialect, "event_edges", "ix_event_edges_prev", ["prev_event_id"]),
        create_table(
            dialect,
            "room_extremities",
            [("room_id", "id", "NOT NULL"), ("event_id", "id", "NOT NULL")],
            primary_key=["room_id", "event_id"],
        ),
        create_table(
            dialect,
            "state_groups",
            [
                # The stream position of the event whose "state after" created the group.
                ("state_group", "bigint", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                # NULL: a full snapshot; else the edits apply on top of prev_group.
                ("prev_group", "bigint"),
                ("delta_count", "int", "NOT NULL DEFAULT 0"),
            ],
            primary_key=["state_group"],
        ),
        create_table(
            dialect,
            "state_group_edits",
            [
                ("state_group", "bigint", "NOT NULL"),
                ("type", "id", "NOT NULL"),
                ("state_key", "id", "NOT NULL"),
                ("event_id", "id", "NOT NULL"),
            ],
            primary_key=["state_group", "type", "state_key"],
        ),
        create_table(
            dialect,
            "graph_events",
            [
                ("event_id", "id", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                ("type", "id", "NOT NULL"),
                ("state_key", "id"),
                ("sender", "id", "NOT NULL"),
                ("depth", "bigint", "NOT NULL"),
                ("origin_server_ts", "bigint", "NOT NULL"),
                ("pdu", "text", "NOT NULL"),
                # outlier | rejected | soft_failed
                ("status", "str:16", "NOT NULL"),
                ("reason", "text"),
                ("state_group", "bigint"),
                ("received_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["event_id"],
        ),
        create_index(dialect, "graph_events", "ix_graph_events_room", ["room_id", "status"]),
        add_column(dialect, "events", ("state_group", "bigint")),
        add_column(dialect, "rooms", ("state_group", "bigint")),
        # ---- the lossless conversion of existing rooms
        _edges(dialect),
        "INSERT INTO room_extremities (room_id, event_id) SELECT r.room_id, r.last_event_id FROM rooms r "
        "WHERE r.last_event_id IS NOT NULL AND EXISTS (SELECT 1 FROM events e WHERE e.event_id = r.last_event_id)",
        "INSERT INTO state_groups (state_group, room_id, prev_group, delta_count) "
        "SELECT e.stream_pos, e.room_id, (SELECT MAX(p.stream_pos) FROM events p WHERE p.room_id = e.room_id "
        "AND p.state_key IS NOT NULL AND p.stream_pos < e.stream_pos), (SELECT COUNT(*) FROM events p "
        "WHERE p.room_id = e.room_id AND p.state_key IS NOT NULL AND p.stream_pos < e.stream_pos) "
        "FROM events e WHERE e.state_key IS NOT NULL",
        "INSERT INTO state_group_edits (state_group, type, state_key, event_id) "
        "SELECT stream_pos, type, state_key, event_id FROM events WHERE state_key IS NOT NULL",
        _event_groups(dialect),
        "UPDATE rooms SET state_group = (SELECT MAX(p.stream_pos) FROM events p "
        "WHERE p.room_id = rooms.room_id AND p.state_key IS NOT NULL)",
    ]

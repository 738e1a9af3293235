"""Rooms, room events (v11 PDUs), current state, memberships, send transactions
and to-device messages."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "rooms",
            [
                ("room_id", "id", "NOT NULL"),
                ("room_version", "str:16", "NOT NULL"),
                ("creator", "id", "NOT NULL"),
                ("is_direct", "bool", "NOT NULL DEFAULT 0"),
                ("created_ts", "bigint", "NOT NULL"),
                # The forward extremity (single server: the DAG is a line).
                ("last_event_id", "id"),
                ("last_depth", "bigint", "NOT NULL DEFAULT 0"),
                ("last_pos", "bigint", "NOT NULL DEFAULT 0"),
                ("purged", "bool", "NOT NULL DEFAULT 0"),
            ],
            primary_key=["room_id"],
        ),
        create_table(
            dialect,
            "events",
            [
                # Position in the "events" stream; unique, committed in order.
                ("stream_pos", "bigint", "NOT NULL"),
                ("event_id", "id", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                ("type", "id", "NOT NULL"),
                ("state_key", "id"),
                ("sender", "id", "NOT NULL"),
                ("membership", "str:32"),
                ("depth", "bigint", "NOT NULL"),
                ("origin_server_ts", "bigint", "NOT NULL"),
                # The PDU as canonical JSON (its redacted form once redacted).
                ("pdu", "text", "NOT NULL"),
                ("txn_device", "str:64"),
                ("txn_id", "id"),
                ("replaces_state", "id"),
                ("prev_content", "text"),
                ("prev_sender", "id"),
                ("redacted_by", "id"),
            ],
            primary_key=["stream_pos"],
            unique=[["event_id"]],
        ),
        create_index(dialect, "events", "ix_events_room_pos", ["room_id", "stream_pos"]),
        create_index(dialect, "events", "ix_events_state_key", ["state_key", "type", "stream_pos"]),
        create_index(dialect, "events", "ix_events_replaces", ["replaces_state"]),
        create_table(
            dialect,
            "room_state",
            [
                ("room_id", "id", "NOT NULL"),
                ("type", "id", "NOT NULL"),
                ("state_key", "id", "NOT NULL"),
                ("event_id", "id", "NOT NULL"),
                ("stream_pos", "bigint", "NOT NULL"),
            ],
            primary_key=["room_id", "type", "state_key"],
        ),
        create_table(
            dialect,
            "room_memberships",
            [
                ("room_id", "id", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                ("membership", "str:32", "NOT NULL"),
                ("event_id", "id", "NOT NULL"),
                ("stream_pos", "bigint", "NOT NULL"),
                # Position of the join that started the current uninterrupted membership.
                ("joined_since", "bigint"),
                ("forgotten", "bool", "NOT NULL DEFAULT 0"),
            ],
            primary_key=["room_id", "user_id"],
        ),
        create_index(dialect, "room_memberships", "ix_room_memberships_user", ["user_id", "membership"]),
        create_table(
            dialect,
            "event_txns",
            [
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("txn_id", "id", "NOT NULL"),
                ("event_id", "id", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "device_id", "txn_id"],
        ),
        create_table(
            dialect,
            "to_device_messages",
            [
                ("id", "auto"),
                ("stream_pos", "bigint", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("sender", "id", "NOT NULL"),
                ("type", "id", "NOT NULL"),
                ("content", "text", "NOT NULL"),
            ],
        ),
        create_index(
            dialect, "to_device_messages", "ix_to_device_target", ["user_id", "device_id", "stream_pos"]
        ),
        create_table(
            dialect,
            "to_device_txns",
            [
                ("sender", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("txn_id", "id", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["sender", "device_id", "txn_id"],
        ),
    ]

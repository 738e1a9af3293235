"""Receipts, typing notifications, presence, account data (incl. room tags) and filters.

Every row that /sync reports carries ``stream_pos``, a position in its named
stream ("receipts", "typing", "presence", "account_data") allocated in the
transaction that wrote the row.

Key lengths: InnoDB limits an index to 3072 bytes, i.e. 768 utf8mb4
characters, so composite keys keep their widest columns in check
(``thread_id`` is at most 128 characters, receipt types 32).
"""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "receipts",
            [
                ("room_id", "id", "NOT NULL"),
                # "m.read" or "m.read.private".
                ("receipt_type", "str:32", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                # "" for an unthreaded receipt, else "main" or a thread root's event id.
                ("thread_id", "str:128", "NOT NULL"),
                ("event_id", "id", "NOT NULL"),
                # The receipted event's position in the "events" stream (unread counts).
                ("event_pos", "bigint", "NOT NULL"),
                ("ts", "bigint", "NOT NULL"),
                ("stream_pos", "bigint", "NOT NULL"),
            ],
            primary_key=["room_id", "receipt_type", "user_id", "thread_id"],
        ),
        create_index(dialect, "receipts", "ix_receipts_room_stream", ["room_id", "stream_pos"]),
        create_index(dialect, "receipts", "ix_receipts_user_room", ["user_id", "room_id"]),
        create_table(
            dialect,
            "typing",
            [
                ("room_id", "id", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                # 1 while the user types; a stop or an expiry clears it (with a new position).
                ("active", "bool", "NOT NULL"),
                ("expires_ts", "bigint", "NOT NULL"),
                ("stream_pos", "bigint", "NOT NULL"),
            ],
            primary_key=["room_id", "user_id"],
        ),
        create_index(dialect, "typing", "ix_typing_room_stream", ["room_id", "stream_pos"]),
        create_index(dialect, "typing", "ix_typing_expiry", ["active", "expires_ts"]),
        create_table(
            dialect,
            "presence",
            [
                ("user_id", "id", "NOT NULL"),
                # "online", "unavailable" or "offline".
                ("state", "str:16", "NOT NULL"),
                ("status_msg", "text"),
                # 1 when the state was set by PUT .../status: a plain sync does
                # not turn an explicit "unavailable" back to online.
                ("explicit", "bool", "NOT NULL DEFAULT 0"),
                # Last user activity (a presence PUT, a sync that set them online).
                ("last_active_ts", "bigint", "NOT NULL"),
                # Last sign of life (any sync or PUT): stale online users go offline.
                ("last_seen_ts", "bigint", "NOT NULL"),
                ("stream_pos", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id"],
        ),
        create_index(dialect, "presence", "ix_presence_stream", ["stream_pos"]),
        create_index(dialect, "presence", "ix_presence_state_seen", ["state", "last_seen_ts"]),
        create_table(
            dialect,
            "account_data",
            [
                ("user_id", "id", "NOT NULL"),
                # "" for global account data.
                ("room_id", "id", "NOT NULL"),
                ("data_type", "id", "NOT NULL"),
                ("content", "text", "NOT NULL"),
                ("stream_pos", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "room_id", "data_type"],
        ),
        create_index(dialect, "account_data", "ix_account_data_stream", ["user_id", "stream_pos"]),
        create_table(
            dialect,
            "filters",
            [
                ("user_id", "id", "NOT NULL"),
                # Derived from the filter's canonical JSON: re-uploading a filter reuses its id.
                ("filter_id", "str:64", "NOT NULL"),
                ("filter_json", "text", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "filter_id"],
        ),
    ]

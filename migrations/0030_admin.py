"""Server administration: admin and moderation flags on accounts, shared-secret
registration nonces, registration tokens, event reports, the admin audit log,
rate-limit overrides, blocked rooms and quarantined media."""

from __future__ import annotations

from migrations.ddl import add_column, create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        add_column(dialect, "users", ("admin", "bool", "NOT NULL DEFAULT 0")),
        add_column(dialect, "users", ("shadow_banned", "bool", "NOT NULL DEFAULT 0")),
        add_column(dialect, "users", ("locked", "bool", "NOT NULL DEFAULT 0")),
        add_column(dialect, "users", ("suspended", "bool", "NOT NULL DEFAULT 0")),
        add_column(dialect, "users", ("erased", "bool", "NOT NULL DEFAULT 0")),
        create_table(
            dialect,
            "admin_nonces",
            [("nonce", "str:64", "NOT NULL"), ("expires_ts", "bigint", "NOT NULL")],
            primary_key=["nonce"],
        ),
        create_table(
            dialect,
            "registration_tokens",
            [
                ("token", "str:64", "NOT NULL"),
                ("uses_allowed", "int"),
                ("pending", "int", "NOT NULL DEFAULT 0"),
                ("completed", "int", "NOT NULL DEFAULT 0"),
                ("expiry_time", "bigint"),
            ],
            primary_key=["token"],
        ),
        create_table(
            dialect,
            "event_reports",
            [
                ("id", "auto"),
                ("received_ts", "bigint", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                ("event_id", "id"),
                ("user_id", "id", "NOT NULL"),
                ("reason", "text"),
                ("score", "int"),
            ],
        ),
        create_index(dialect, "event_reports", "ix_event_reports_room", ["room_id"]),
        create_table(
            dialect,
            "admin_audit",
            [
                ("id", "auto"),
                ("ts", "bigint", "NOT NULL"),
                ("admin_user_id", "id", "NOT NULL"),
                ("action", "str:64", "NOT NULL"),
                ("target", "id", "NOT NULL"),
                ("detail", "text"),
            ],
        ),
        create_table(
            dialect,
            "ratelimit_overrides",
            [
                ("user_id", "id", "NOT NULL"),
                ("messages_per_second", "int", "NOT NULL"),
                ("burst_count", "int", "NOT NULL"),
            ],
            primary_key=["user_id"],
        ),
        create_table(
            dialect,
            "blocked_rooms",
            [("room_id", "id", "NOT NULL"), ("user_id", "id", "NOT NULL"), ("ts", "bigint", "NOT NULL")],
            primary_key=["room_id"],
        ),
        create_table(
            dialect,
            "media_quarantine",
            [("media_id", "str:64", "NOT NULL"), ("quarantined_by", "id", "NOT NULL"),
             ("ts", "bigint", "NOT NULL")],
            primary_key=["media_id"],
        ),
        create_table(
            dialect,
            "media_access",
            [("media_id", "str:64", "NOT NULL"), ("last_access_ts", "bigint", "NOT NULL")],
            primary_key=["media_id"],
        ),
        create_table(
            dialect,
            "room_deletions",
            [("delete_id", "str:64", "NOT NULL"), ("room_id", "id", "NOT NULL"), ("status", "str:16", "NOT NULL"),
             ("result", "text", "NOT NULL"), ("ts", "bigint", "NOT NULL")],
            primary_key=["delete_id"],
        ),
        create_index(dialect, "room_deletions", "ix_room_deletions_room", ["room_id"]),
        create_table(
            dialect,
            "history_purges",
            [("purge_id", "str:64", "NOT NULL"), ("room_id", "id", "NOT NULL"), ("status", "str:16", "NOT NULL"),
             ("deleted", "int", "NOT NULL"), ("ts", "bigint", "NOT NULL")],
            primary_key=["purge_id"],
        ),
        create_table(
            dialect,
            "server_notice_rooms",
            [("user_id", "id", "NOT NULL"), ("room_id", "id", "NOT NULL")],
            primary_key=["user_id"],
        ),
    ]

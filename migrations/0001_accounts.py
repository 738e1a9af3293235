"""Accounts, devices, access tokens, interactive auth, e-mail codes, login challenges,
rate-limit counters and stream positions."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "users",
            [
                ("user_id", "id", "NOT NULL"),
                ("localpart", "id", "NOT NULL"),
                ("email", "str:254"),
                ("password_hash", "str:255"),
                ("login_key", "str:64"),
                ("is_placeholder", "bool", "NOT NULL DEFAULT 0"),
                ("deactivated", "bool", "NOT NULL DEFAULT 0"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id"],
            unique=[["email"]],
        ),
        create_table(
            dialect,
            "devices",
            [
                ("id", "auto"),
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("display_name", "str:255"),
                ("last_seen_ip", "str:64"),
                ("last_seen_ts", "bigint"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            unique=[["user_id", "device_id"]],
        ),
        create_table(
            dialect,
            "access_tokens",
            [
                ("id", "auto"),
                ("token_hash", "str:64", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                ("device_id", "str:64", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            unique=[["token_hash"]],
        ),
        create_index(dialect, "access_tokens", "ix_access_tokens_user", ["user_id", "device_id"]),
        create_table(
            dialect,
            "uia_sessions",
            [
                ("session_id", "str:64", "NOT NULL"),
                ("purpose", "str:64", "NOT NULL"),
                ("user_id", "id"),
                ("completed", "text", "NOT NULL"),
                ("params", "text", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
                ("expires_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["session_id"],
        ),
        create_table(
            dialect,
            "email_validations",
            [
                ("sid", "str:64", "NOT NULL"),
                ("client_secret", "str:255", "NOT NULL"),
                ("email", "str:254", "NOT NULL"),
                # NULL when no code was sent (the address is already taken):
                # such a session can never validate, and the answer looks the same.
                ("code_hash", "str:64"),
                ("attempts", "int", "NOT NULL DEFAULT 0"),
                ("validated_ts", "bigint"),
                ("created_ts", "bigint", "NOT NULL"),
                ("expires_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["sid"],
        ),
        create_table(
            dialect,
            "login_challenges",
            [
                ("challenge_id", "str:64", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                ("nonce", "str:64", "NOT NULL"),
                ("expires_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["challenge_id"],
        ),
        create_table(
            dialect,
            "rate_limits",
            [
                ("bucket", "id", "NOT NULL"),
                ("window_start", "bigint", "NOT NULL"),
                ("hits", "int", "NOT NULL"),
            ],
            primary_key=["bucket"],
        ),
        create_table(
            dialect,
            "stream_positions",
            [
                ("stream", "str:64", "NOT NULL"),
                ("position", "bigint", "NOT NULL"),
            ],
            primary_key=["stream"],
        ),
    ]

"""Pushers: where a user's notifications are pushed (issue 21)."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "pushers",
            [
                ("user_id", "id", "NOT NULL"),
                ("app_id", "str:64", "NOT NULL"),
                # sha256 of the pushkey (up to 512 bytes, too long for a MySQL key).
                ("pushkey_hash", "str:64", "NOT NULL"),
                # The device whose access token created the pusher: it goes with the device.
                ("device_id", "id", "NOT NULL"),
                ("pusher_json", "text", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "app_id", "pushkey_hash"],
        ),
        create_index(dialect, "pushers", "ix_pushers_app_key", ["app_id", "pushkey_hash"]),
    ]

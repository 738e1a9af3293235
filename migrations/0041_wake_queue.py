"""Cross-instance wake-ups without Redis: a short-lived queue every instance polls.

Each row is one small wake-up message (room, stream position, a few user
ids), the same message Redis pub/sub carries; rows older than a minute are
deleted.
"""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "wake_queue",
            [
                ("id", "auto"),
                ("created_ms", "bigint", "NOT NULL"),
                ("origin", "str:128", "NOT NULL"),
                ("body", "text", "NOT NULL"),
            ],
        ),
        create_index(dialect, "wake_queue", "ix_wake_queue_created", ["created_ms"]),
    ]

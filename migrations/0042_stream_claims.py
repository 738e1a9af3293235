"""Positions of the events stream claimed by writers whose transactions have not committed yet.

With several writers (instances) a position is claimed in a short
transaction of its own, instead of holding the counter row's lock through
the whole write; readers are served the position just below the lowest
open claim ("persisted up to").
"""

from __future__ import annotations

from migrations.ddl import create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "stream_claims",
            [
                ("stream", "str:64", "NOT NULL"),
                ("position", "bigint", "NOT NULL"),
                ("created_ms", "bigint", "NOT NULL"),
            ],
            primary_key=["stream", "position"],
        ),
    ]

"""Shared deployment state: the server signing key lives in the database.

Every instance of a deployment reads the same key from here; the first
instance to start creates it (``INSERT`` that ignores a duplicate, then a
read), so instances need no shared folder for it.
"""

from __future__ import annotations

from migrations.ddl import create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "server_signing_keys",
            [
                ("server_name", "id", "NOT NULL"),
                ("key_id", "str:64", "NOT NULL"),
                ("seed", "str:128", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["server_name"],
        ),
    ]

"""Room aliases and the public room directory (issue 21)."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "room_aliases",
            [
                ("room_alias", "id", "NOT NULL"),
                ("room_id", "id", "NOT NULL"),
                ("creator", "id", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["room_alias"],
        ),
        create_index(dialect, "room_aliases", "ix_room_aliases_room", ["room_id"]),
        create_table(
            dialect,
            "room_directory",
            [
                ("room_id", "id", "NOT NULL"),
                # The server whose public list shows the room.
                ("server_name", "id", "NOT NULL"),
                ("published_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["room_id"],
        ),
        create_index(dialect, "room_directory", "ix_room_directory_server", ["server_name", "published_ts"]),
    ]

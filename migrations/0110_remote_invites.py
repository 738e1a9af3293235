"""What a remote server sent along with an invite of a local user to a room this server is not in
(``invite_room_state`` of ``PUT /_matrix/federation/v2/invite``): the stripped state /sync shows with
the invite.  Keyed by the invite event; the invite event itself is in ``events``.
"""

from __future__ import annotations

from migrations.ddl import create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(dialect, "remote_invite_state", [
            ("event_id", "id", "NOT NULL"),
            ("room_id", "id", "NOT NULL"),
            ("state", "text", "NOT NULL"),
        ], primary_key=("event_id",)),
    ]

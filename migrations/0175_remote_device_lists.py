"""Device lists of other servers' users, as their servers answered ``user/keys/query`` (issue 14).

One row per (our server, remote user): ``body`` is that user's part of the answer
(device keys, master and self-signing keys) as JSON, NULL once an
``m.device_list_update`` / ``m.signing_key_update`` made it stale; ``changed_ts`` is
when that last happened, so an answer fetched before it is not stored.
"""

from __future__ import annotations

from migrations.ddl import create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "remote_device_lists",
            [
                ("owner", "id", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                ("body", "text", ""),
                ("changed_ts", "bigint", "NOT NULL"),
                ("fetched_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["owner", "user_id"],
        ),
    ]

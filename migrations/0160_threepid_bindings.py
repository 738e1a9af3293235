"""Third-party identifiers bound to an identity server through this homeserver
(``/account/3pid/bind``), remembered so that deleting the identifier or the account
unbinds it there again (issue 21)."""

from __future__ import annotations

from migrations.ddl import create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "threepid_bindings",
            [
                ("user_id", "id", "NOT NULL"),
                ("medium", "str:16", "NOT NULL"),
                ("address", "str:190", "NOT NULL"),
                ("id_server", "str:190", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["user_id", "medium", "address", "id_server"],
        ),
    ]

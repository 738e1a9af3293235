"""User id aliases (issue 15): the e-mail lookup id of someone who registered later.

A placeholder (``@u<hash>``) handed out by an e-mail lookup becomes an alias of
the account its person registers under the name they chose: ``alias_id`` is the
looked-up id, ``user_id`` the account.  Invitations to the alias reach the
account; the placeholder row stays (so the id is never handed to anyone else)."""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(
            dialect,
            "user_aliases",
            [
                ("alias_id", "id", "NOT NULL"),
                ("user_id", "id", "NOT NULL"),
                ("created_ts", "bigint", "NOT NULL"),
            ],
            primary_key=["alias_id"],
        ),
        create_index(dialect, "user_aliases", "ix_user_aliases_user", ["user_id"]),
    ]

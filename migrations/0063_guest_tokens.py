"""Access tokens of guest accounts are marked (issue 21: guest access, off by default)."""

from __future__ import annotations

from migrations.ddl import add_column


def upgrade(dialect: str) -> list[str]:
    return [add_column(dialect, "access_tokens", ("is_guest", "bool", "NOT NULL DEFAULT 0"))]

"""Pairing sessions keep the approving device's ephemeral key (issue 15: SAS-authenticated pairing).

The claiming device sends its ephemeral X25519 key with the claim; the new device
reads it (and the claiming device's id) while polling, so both can show the short
code derived from the whole transcript before anything secret is sent."""

from __future__ import annotations

from migrations.ddl import add_column


def upgrade(dialect: str) -> list[str]:
    return [add_column(dialect, "pairing_sessions", ("approving_key", "text"))]

"""Answers of POSTs that carried an ``Idempotency-Key`` (issue 16).

One row per (scope, key): while the first attempt runs it holds a lease
(``attempt``, until ``expires_ts``); once answered it holds the sealed
answer until ``expires_ts``.  ``lookup`` and ``fingerprint`` are SHA-256 digests;
``answer`` is AES-256-GCM ciphertext under a key derived from the request
itself (nothing stored opens it; see ``homeserver/services/idempotency.py``).
"""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(dialect, "idempotent_requests", [
            ("lookup", "str:64", "NOT NULL"),
            ("attempt", "str:32", "NOT NULL"),
            ("fingerprint", "str:64"),
            ("status", "int"),
            ("answer", "blob"),
            ("created_ts", "bigint", "NOT NULL"),
            ("expires_ts", "bigint", "NOT NULL"),
        ], primary_key=("lookup",)),
        create_index(dialect, "idempotent_requests", "idempotent_requests_expiry", ["expires_ts"]),
    ]

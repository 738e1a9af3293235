"""Federation (issue 14): remote servers' keys, received transactions, the outgoing queue.

* ``federation_server_keys``: one row per (server, key id) fetched from that
  server or a notary; ``valid_until_ts`` is the effective validity (the
  lesser of the response's ``valid_until_ts`` and 7 days after the fetch, or
  ``expired_ts`` of an old key); ``response`` is the server's own signed key
  response it came in (served again, co-signed, by the notary endpoints).
* ``federation_received_txns``: the answer of every ``/send/{txnId}`` per
  (receiving server, origin, txn id), so a replay gets the same answer and
  is applied once; ``answer`` NULL while the first attempt is running.
* ``federation_outbox``: PDUs and EDUs waiting for a destination, in order.
* ``federation_destinations``: per (origin, destination) the retry schedule
  and the sender lease (one instance sends to a destination at a time).
"""

from __future__ import annotations

from migrations.ddl import create_index, create_table


def upgrade(dialect: str) -> list[str]:
    return [
        create_table(dialect, "federation_server_keys", [
            ("server_name", "id", "NOT NULL"),
            ("key_id", "str:128", "NOT NULL"),
            ("public_key", "str:128", "NOT NULL"),
            ("valid_until_ts", "bigint", "NOT NULL"),
            ("expired_ts", "bigint"),
            ("fetched_ts", "bigint", "NOT NULL"),
            ("response", "text", "NOT NULL"),
        ], primary_key=("server_name", "key_id")),
        create_table(dialect, "federation_received_txns", [
            ("destination", "id", "NOT NULL"),
            ("origin", "id", "NOT NULL"),
            ("txn_id", "str:255", "NOT NULL"),
            ("answer", "text"),
            ("started_ts", "bigint", "NOT NULL"),
        ], primary_key=("destination", "origin", "txn_id")),
        create_index(dialect, "federation_received_txns", "federation_received_txns_age", ["started_ts"]),
        create_table(dialect, "federation_outbox", [
            ("id", "auto"),
            ("origin", "id", "NOT NULL"),
            ("destination", "id", "NOT NULL"),
            ("kind", "str:8", "NOT NULL"),
            ("payload", "text", "NOT NULL"),
            ("created_ts", "bigint", "NOT NULL"),
        ]),
        create_index(dialect, "federation_outbox", "federation_outbox_queue", ["origin", "destination", "id"]),
        create_table(dialect, "federation_destinations", [
            ("origin", "id", "NOT NULL"),
            ("destination", "id", "NOT NULL"),
            ("failures", "int", "NOT NULL DEFAULT 0"),
            ("retry_at_ts", "bigint", "NOT NULL DEFAULT 0"),
            ("lease_owner", "str:64"),
            ("lease_until_ts", "bigint", "NOT NULL DEFAULT 0"),
            ("last_success_ts", "bigint"),
        ], primary_key=("origin", "destination")),
    ]

"""A Tortoise MySQL backend whose autocommit statements survive lost connections and deadlocks.

Tortoise loads a backend module by name and uses its ``client_class``;
:class:`homeserver.storage.database.Database` points MySQL URLs here.  Only
the pooled client (statements outside a transaction) repeats statements:
inside a transaction a failure aborts the whole transaction, which the
caller (or the API, for idempotent requests) must repeat as a whole.
"""

from __future__ import annotations

from typing import Any

from tortoise.backends.mysql.client import MySQLClient

from homeserver.storage.retry import retrying

STATEMENT_ATTEMPTS = 4
_READ_VERBS = ("SELECT", "SHOW", "WITH", "EXPLAIN")


def _is_read(query: str) -> bool:
    return query.lstrip().lstrip("(").upper().startswith(_READ_VERBS)


class RetryingMySQLClient(MySQLClient):
    async def execute_query(self, query: str, values: list[Any] | None = None) -> tuple[int, list[dict[str, Any]]]:
        async for attempt in retrying(STATEMENT_ATTEMPTS, reads=_is_read(query)):
            with attempt:
                result: tuple[int, list[dict[str, Any]]] = await super().execute_query(query, values)
                return result
        raise AssertionError("unreachable")  # pragma: no cover

    async def execute_insert(self, query: str, values: list[Any]) -> int:
        async for attempt in retrying(STATEMENT_ATTEMPTS, reads=False):
            with attempt:
                row_id: int = await super().execute_insert(query, values)
                return row_id
        raise AssertionError("unreachable")  # pragma: no cover


client_class = RetryingMySQLClient

"""Every SQL statement a request issues, counted where Tortoise hands it to the driver.

:class:`homeserver.storage.database.Database`'s ``query_observers`` see only
the raw SQL of the repositories; ORM calls (``Model.get_or_none``, querysets)
and a transaction's ``BEGIN``/``COMMIT`` pass beside them.  This counter
wraps the Tortoise client methods of both backends instead (SQLite and
MySQL), so whatever reaches the database is seen, with its text, by the task
that issued it and the tasks that task started (a request runs in one task and
what it gathers; background loops run in others).

Only the outermost call of a task counts (MySQL's ``execute_query_dict``
calls ``execute_query``); a statement repeated after a lost connection
counts each time, as it costs each time.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from tortoise.backends.mysql.client import MySQLClient
from tortoise.backends.mysql.client import TransactionWrapper as MySQLTransaction
from tortoise.backends.sqlite.client import SqliteClient, SqliteTransactionWrapper

_STATEMENT_METHODS = ("execute_query", "execute_query_dict", "execute_insert", "execute_many", "execute_script")
_TRANSACTION_METHODS = ("begin", "commit", "rollback")
_inside: contextvars.ContextVar[bool] = contextvars.ContextVar("parley_counting_statement", default=False)


# The request a statement belongs to: marked at the request task's first statement and
# inherited by the tasks it starts after that (asyncio.gather copies the context), so
# statements a request issues concurrently are counted with it.
_request: contextvars.ContextVar[object] = contextvars.ContextVar("parley_counted_request")


@dataclass
class Statements:
    """The statements seen while counting, per request (task and the tasks it started)."""

    per_request: dict[int, list[str]] = field(default_factory=lambda: defaultdict(list))
    _markers: list[object] = field(default_factory=list)

    def busiest(self) -> list[str]:
        """The statements of the request that issued the most (the counted request's)."""
        return max(self.per_request.values(), key=len, default=[])

    def record(self, text: str) -> None:
        marker = _request.get(None)
        if marker is None:
            marker = object()
            self._markers.append(marker)  # ids stay unique while counting
            _request.set(marker)
        self.per_request[id(marker)].append(" ".join(text.split()))


def _wrap(original: Callable[..., Any], name: str, seen: Statements) -> Callable[..., Any]:
    @functools.wraps(original)
    async def counted(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _inside.get():
            return await original(self, *args, **kwargs)
        seen.record(str(args[0]) if name in _STATEMENT_METHODS and args else name.upper())
        token = _inside.set(True)
        try:
            return await original(self, *args, **kwargs)
        finally:
            _inside.reset(token)

    return counted


@contextlib.contextmanager
def counting_statements() -> Iterator[Statements]:
    """Count every statement any homeserver of this process issues until the block ends."""
    seen = Statements()
    patched: list[tuple[type, str, Any]] = []
    targets: list[tuple[type, tuple[str, ...]]] = [
        (SqliteClient, _STATEMENT_METHODS), (MySQLClient, _STATEMENT_METHODS),
        (SqliteTransactionWrapper, ("execute_many", *_TRANSACTION_METHODS)),
        (MySQLTransaction, ("execute_many", *_TRANSACTION_METHODS)),
    ]
    try:
        for cls, names in targets:
            for name in names:
                original = cls.__dict__.get(name)
                if original is None:
                    continue  # inherited: the base class's wrapper counts it
                patched.append((cls, name, original))
                setattr(cls, name, _wrap(original, name, seen))
        yield seen
    finally:
        for cls, name, original in reversed(patched):
            setattr(cls, name, original)

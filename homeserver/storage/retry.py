"""Which database failures are worth repeating, and the bounded, jittered retry policy.

Failures are told apart by the MySQL/MariaDB error code (Tortoise wraps the
driver's exception, so the whole chain is searched):

* ``lock`` - a deadlock (1213) or lock wait timeout (1205): the server rolled
  the statement or transaction back, so running it again is always safe.
  SQLite's "database is locked" counts here too.
* ``lost`` - the connection died (2006, 2013, 2055, killed 1927, shutdown 1053,
  MySQL 8's idle disconnect 4031): safe to repeat for reads; a write may or
  may not have committed.
* ``unavailable`` - no connection could be made (2002, 2003, too many
  connections 1040), or the statement was refused before it was sent
  ("not connected"): nothing ran, so it is safe to repeat.

:class:`homeserver.storage.mysql_backend.RetryingMySQLClient` repeats single
statements where that is safe; the API repeats whole idempotent requests
(``GET``/``PUT``/``DELETE``, whose Matrix semantics make a repeat harmless);
anything still failing is answered ``503`` with ``Retry-After``, never ``500``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt, wait_random_exponential

Kind = Literal["lock", "lost", "unavailable"]

LOCK_ERRORS = {1205, 1213}
LOST_ERRORS = {1053, 1927, 2006, 2013, 2055, 4031}
UNAVAILABLE_ERRORS = {1040, 2002, 2003}

RETRY_AFTER_S = 1


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend(a for a in current.args if isinstance(a, BaseException))
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                todo.append(linked)


def transient_kind(exc: BaseException) -> Kind | None:
    """The kind of transient database failure ``exc`` is, or None for any other error."""
    for current in _chain(exc):
        name = type(current).__name__
        code = current.args[0] if current.args and isinstance(current.args[0], int) else None
        if code in LOCK_ERRORS:
            return "lock"
        if code in LOST_ERRORS:
            return "lost"
        if code in UNAVAILABLE_ERRORS:
            return "unavailable"
        if name == "DBConnectionError":
            return "unavailable"
        if name == "InterfaceError" and type(current).__module__.startswith("pymysql"):
            return "unavailable"  # "(0, 'Not connected')": refused before sending
        if "database is locked" in str(current):
            return "lock"
    return None


def is_transient(exc: BaseException) -> bool:
    return transient_kind(exc) is not None


def retrying(attempts: int, *, reads: bool) -> AsyncRetrying:
    """A retry loop for one statement: reads repeat every transient failure, writes only safe ones."""
    safe: set[Kind] = {"lock", "lost", "unavailable"} if reads else {"lock", "unavailable"}

    def worth_repeating(exc: BaseException) -> bool:
        return transient_kind(exc) in safe

    return AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_random_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception(worth_repeating),
        reraise=True,
    )

"""The database handle: one Tortoise context per homeserver, raw SQL helpers, migrations.

Each homeserver owns its own :class:`tortoise.context.TortoiseContext`
(no global Tortoise state), so several homeservers can live in one process.
The API layer activates the context for every request; background tasks
started from the app's lifespan inherit it.

Repositories use the ORM for ordinary rows and :meth:`Database.execute`
for the few statements the ORM cannot express portably (atomic upserts,
stream position allocation).  SQL is written with ``?`` placeholders and
translated for MySQL.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.backends.base.config_generator import expand_db_url

# Tortoise keeps the active context in this context variable (no public setter
# that is safe for concurrent use exists in tortoise-orm 1.1).
from tortoise.context import TortoiseContext, _current_context
from tortoise.transactions import in_transaction

from homeserver.storage.migrate import apply_migrations

logger = logging.getLogger(__name__)

MODEL_MODULES = [
    "homeserver.storage.models.accounts",
    "homeserver.storage.models.rooms",
    "homeserver.storage.models.ephemeral",
    "homeserver.storage.models.media",
    "homeserver.storage.models.profiles",
    "homeserver.storage.models.keys",
]

Row = dict[str, Any]


def _mysql_url(url: str, pool_min: int, pool_max: int) -> str:
    """Add the connection options MySQL needs for exact, UTC-consistent behaviour."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    query.setdefault("charset", "utf8mb4")
    query.setdefault("minsize", str(pool_min))
    query.setdefault("maxsize", str(pool_max))
    # Only the first pooled connection gets the server time zone otherwise.
    query.setdefault("init_command", "SET time_zone='+00:00'")
    return urlunsplit(parts._replace(query=urlencode(query)))


def _sqlite_url(url: str) -> str:
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    # Several processes may share one file (CLI tools, a second instance).
    query.setdefault("busy_timeout", "20000")
    return urlunsplit(parts._replace(query=urlencode(query)))


class Database:
    """Owns the Tortoise context and the SQL dialect of one homeserver."""

    def __init__(self, url: str, pool_min: int = 1, pool_max: int = 10) -> None:
        scheme = url.split(":", 1)[0]
        if scheme == "sqlite":
            self.dialect = "sqlite"
            self.url = _sqlite_url(url)
        elif scheme == "mysql":
            self.dialect = "mysql"
            self.url = _mysql_url(url, pool_min, pool_max)
        else:
            raise ValueError(f"unsupported database URL scheme {scheme!r} (use sqlite:// or mysql://)")
        self.context = TortoiseContext()
        # Called with the seconds each raw SQL statement took (read by /metrics).
        self.query_observers: list[Callable[[float], None]] = []

    def sqlite_file(self) -> str | None:
        """The SQLite database's file (None for MySQL or an in-memory database)."""
        if self.dialect != "sqlite":
            return None
        path = str(expand_db_url(self.url)["credentials"].get("file_path", ""))
        return None if path in ("", ":memory:") else path

    async def connect(self) -> None:
        """Connect without touching the schema (tools, tests)."""
        connection = expand_db_url(self.url)
        if self.dialect == "mysql":
            # The same client, repeating statements after lost connections and deadlocks.
            connection["engine"] = "homeserver.storage.mysql_backend"
        config = {
            "connections": {"default": connection},
            "apps": {"models": {"models": MODEL_MODULES, "default_connection": "default"}},
        }
        with self.activated():
            await self.context.init(config, use_tz=False)

    async def open(self) -> None:
        """Connect and bring the schema up to date (refusing a newer one)."""
        await self.connect()
        with self.activated():
            try:
                await apply_migrations(self)
            except BaseException:
                await self.context.close_connections()
                raise

    async def close(self) -> None:
        with self.activated():
            await self.context.close_connections()

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Make this homeserver's Tortoise context current for the enclosed code.

        ``with TortoiseContext:`` keeps its reset token on the (shared) context
        object, so concurrent requests would overwrite each other's tokens; the
        token is kept here, per call, instead.
        """
        token = _current_context.set(self.context)
        try:
            yield
        finally:
            _current_context.reset(token)

    # ------------------------------------------------------------------ raw SQL
    def connection(self) -> BaseDBAsyncClient:
        return self.context.db()

    def sql(self, query: str) -> str:
        return query.replace("?", "%s") if self.dialect == "mysql" else query

    async def execute(
        self, query: str, params: Sequence[Any] = (), conn: BaseDBAsyncClient | None = None
    ) -> int:
        """Run a statement; return the number of affected rows."""
        client = conn or self.connection()
        started = time.perf_counter()
        rowcount, _ = await client.execute_query(self.sql(query), list(params))
        self._observe(started)
        return int(rowcount)

    def _observe(self, started: float) -> None:
        elapsed = time.perf_counter() - started
        for observe in self.query_observers:
            observe(elapsed)

    def pool_stats(self) -> tuple[int, int, int] | None:
        """(open, idle, max) connections of the MySQL pool; None for SQLite (one connection)."""
        pool = getattr(self.connection(), "_pool", None)
        if pool is None:
            return None
        return int(pool.size), int(pool.freesize), int(pool.maxsize)

    async def fetch(
        self, query: str, params: Sequence[Any] = (), conn: BaseDBAsyncClient | None = None
    ) -> list[Row]:
        client = conn or self.connection()
        started = time.perf_counter()
        rows = await client.execute_query_dict(self.sql(query), list(params))
        self._observe(started)
        return rows

    async def fetch_one(
        self, query: str, params: Sequence[Any] = (), conn: BaseDBAsyncClient | None = None
    ) -> Row | None:
        rows = await self.fetch(query, params, conn)
        return rows[0] if rows else None

    @contextlib.asynccontextmanager
    async def transaction(self) -> AsyncIterator[BaseDBAsyncClient]:
        """A transaction; ORM calls inside it must pass ``using_db=conn``."""
        async with in_transaction() as conn:
            yield conn

    def upsert_sql(self, table: str, key_columns: Sequence[str], columns: Sequence[str]) -> str:
        """``INSERT ... ON CONFLICT/DUPLICATE KEY UPDATE`` setting every non-key column."""
        placeholders = ", ".join("?" for _ in columns)
        updates = [c for c in columns if c not in key_columns]
        if self.dialect == "mysql":
            assigns = ", ".join(f"{c} = VALUES({c})" for c in updates)
            return (
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
                f"ON DUPLICATE KEY UPDATE {assigns or key_columns[0] + ' = ' + key_columns[0]}"
            )
        assigns = ", ".join(f"{c} = excluded.{c}" for c in updates)
        conflict = "DO NOTHING" if not updates else f"DO UPDATE SET {assigns}"
        return (
            f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders}) "
            f"ON CONFLICT ({', '.join(key_columns)}) {conflict}"
        )

    def insert_ignore_sql(self, table: str, columns: Sequence[str]) -> str:
        placeholders = ", ".join("?" for _ in columns)
        verb = "INSERT IGNORE" if self.dialect == "mysql" else "INSERT OR IGNORE"
        return f"{verb} INTO {table} ({', '.join(columns)}) VALUES ({placeholders})"

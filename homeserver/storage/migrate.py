"""Apply the numbered migrations in ``migrations/`` and refuse a newer schema.

Safe when several instances start at once, and re-runnable after a failure:

* MySQL/MariaDB: the whole run happens on **one dedicated connection** that
  holds ``GET_LOCK`` under a name derived from the database's name
  (``GET_LOCK`` is global to the server and owned by a connection, so a
  pooled connection could release another's lock, and two databases on one
  server would block each other).  DDL commits implicitly, so every
  statement is recorded in ``schema_steps`` right after it ran; a re-run
  skips recorded steps, and a step that ran but was not recorded (a crash
  in between) is recognised by its "already exists" error.
* SQLite: each migration runs in one transaction with its record.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import logging
import os
import pkgutil
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from tortoise.exceptions import IntegrityError

try:
    import fcntl
except ImportError:  # pragma: no cover (Windows)
    fcntl = None  # type: ignore[assignment]

import migrations
from homeserver.storage.retry import retrying
from migrations.ddl import adapt_to_server, collation_for_server

if TYPE_CHECKING:
    from homeserver.storage.database import Database

logger = logging.getLogger(__name__)

LOCK_TIMEOUT_S = 120
# MySQL errors meaning "this DDL step already happened": table, column, index, key exist.
ALREADY_DONE_ERRORS = {1050, 1060, 1061, 1826}
SCHEMA_VERSION_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ts BIGINT NOT NULL)"
)
SCHEMA_STEPS_DDL = (
    "CREATE TABLE IF NOT EXISTS schema_steps (version INTEGER NOT NULL, step INTEGER NOT NULL, "
    "applied_ts BIGINT NOT NULL, PRIMARY KEY (version, step))"
)
# The lock name: at most 64 characters, per database (server-side SHA1 of its name).
MYSQL_LOCK_NAME_SQL = "CONCAT('parley_migrations_', SHA1(DATABASE()))"


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer Parley than this one."""


class MigrationLockTimeout(RuntimeError):
    """Another instance held the migration lock for longer than the timeout."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    upgrade: Callable[[str], list[str]]


def known_migrations() -> list[Migration]:
    found = []
    for info in pkgutil.iter_modules(migrations.__path__):
        prefix, _, rest = info.name.partition("_")
        if not prefix.isdigit():
            continue
        module = importlib.import_module(f"migrations.{info.name}")
        found.append(
            Migration(int(prefix), rest, cast(Callable[[str], list[str]], module.upgrade))
        )
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return found


async def applied_versions(db: Database) -> set[int]:
    rows = await db.fetch("SELECT version FROM schema_version")
    return {int(r["version"]) for r in rows}


def _check_not_newer(applied: set[int], known: Sequence[Migration]) -> None:
    unknown = applied - {m.version for m in known}
    if unknown:
        latest = known[-1].version if known else 0
        raise SchemaTooNewError(
            f"the database has schema migration(s) {sorted(unknown)} applied, but this Parley "
            f"only knows up to {latest}: upgrade Parley instead of downgrading the database"
        )


def _now_ms() -> int:
    return int(time.time() * 1000)


async def apply_migrations(db: Database, available: Sequence[Migration] | None = None,
                           lock_timeout_s: int = LOCK_TIMEOUT_S) -> int:
    """Bring the schema up to date; return the resulting version."""
    known = list(available) if available is not None else known_migrations()
    if db.dialect == "mysql":
        return await _apply_mysql(db, known, lock_timeout_s)
    return await _apply_sqlite(db, known)


# Instances starting together on one SQLite file take the write lock migration by migration;
# SQLite's busy handler is not fair, so one of them can starve past its busy timeout and get
# "database is locked".  Every step is atomic with its version record, so the run is repeated.
SQLITE_MIGRATION_ATTEMPTS = 10


async def _apply_sqlite(db: Database, known: Sequence[Migration]) -> int:
    async with _sqlite_migration_lock(db.sqlite_file()):
        async for attempt in retrying(SQLITE_MIGRATION_ATTEMPTS, reads=False):
            with attempt:
                return await _apply_sqlite_once(db, known)
    raise AssertionError("unreachable")  # pragma: no cover (retrying re-raises the last error)


@contextlib.asynccontextmanager
async def _sqlite_migration_lock(db_file: str | None) -> AsyncIterator[None]:
    """One migrating instance per SQLite file at a time (the file's analogue of MySQL's
    GET_LOCK): an advisory ``flock`` on ``<file>.migrations.lock``, polled so that a cancelled
    start-up never leaves a thread holding it.  Without ``fcntl`` (Windows) or for an
    in-memory database there is nothing to share."""
    if db_file is None or fcntl is None:
        yield
        return
    fd = os.open(db_file + ".migrations.lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(0.05)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


async def _apply_sqlite_once(db: Database, known: Sequence[Migration]) -> int:
    await db.execute(SCHEMA_VERSION_DDL)
    applied = await applied_versions(db)
    _check_not_newer(applied, known)
    for migration in known:
        if migration.version in applied:
            continue
        try:
            async with db.transaction() as conn:
                # Writing the record first takes the write lock before any read (SQLite
                # answers "database is locked" at once to a reader turning writer), and a
                # process sharing the file that applied it meanwhile makes this a duplicate.
                await db.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                                 (migration.version, _now_ms()), conn=conn)
                logger.info("applying migration %04d_%s", migration.version, migration.name)
                for statement in migration.upgrade(db.dialect):
                    await db.execute(statement, conn=conn)
        except IntegrityError:
            continue
    return max(await applied_versions(db), default=0)


class _MysqlSession:
    """Statements on one raw connection (the one that holds the lock)."""

    def __init__(self, db: Database, connection: Any) -> None:
        self.db = db
        self.connection = connection

    async def execute(self, query: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self.connection.cursor() as cursor:
            await cursor.execute(self.db.sql(query), list(params) or None)
            return list(await cursor.fetchall())


async def _apply_mysql(db: Database, known: Sequence[Migration], lock_timeout_s: int) -> int:
    async with db.connection().acquire_connection() as connection:
        session = _MysqlSession(db, connection)
        rows = await session.execute(f"SELECT GET_LOCK({MYSQL_LOCK_NAME_SQL}, ?)", (lock_timeout_s,))
        if not rows or rows[0][0] != 1:
            raise MigrationLockTimeout(
                f"could not take the migration lock within {lock_timeout_s} s "
                "(another instance is migrating this database)"
            )
        try:
            return await _migrate_locked(session, known)
        finally:
            await session.execute(f"SELECT RELEASE_LOCK({MYSQL_LOCK_NAME_SQL})")


async def _migrate_locked(session: _MysqlSession, known: Sequence[Migration]) -> int:
    # MariaDB and Oracle MySQL 8 name their exact (binary, NO PAD) collations differently.
    server_version = str((await session.execute("SELECT VERSION()"))[0][0])
    collation_for_server(server_version)  # refuses servers without a NO PAD binary collation
    await session.execute(SCHEMA_VERSION_DDL)
    await session.execute(SCHEMA_STEPS_DDL)
    applied = {int(r[0]) for r in await session.execute("SELECT version FROM schema_version")}
    _check_not_newer(applied, known)
    steps = {(int(r[0]), int(r[1])) for r in await session.execute("SELECT version, step FROM schema_steps")}
    for migration in known:
        if migration.version in applied:
            continue
        logger.info("applying migration %04d_%s", migration.version, migration.name)
        for index, statement in enumerate(migration.upgrade("mysql")):
            if (migration.version, index) in steps:
                continue
            await _run_step(session, adapt_to_server(statement, server_version))
            await session.execute("INSERT INTO schema_steps (version, step, applied_ts) VALUES (?, ?, ?)",
                                  (migration.version, index, _now_ms()))
        await session.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                              (migration.version, _now_ms()))
        applied.add(migration.version)
    return max(applied, default=0)


async def _run_step(session: _MysqlSession, statement: str) -> None:
    try:
        await session.execute(statement)
    except Exception as exc:
        code = exc.args[0] if exc.args and isinstance(exc.args[0], int) else None
        if code not in ALREADY_DONE_ERRORS:
            raise
        # It ran before the process stopped, but its record did not get written.
        logger.warning("migration step already applied (%s); recording it", exc)

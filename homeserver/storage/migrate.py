"""Apply the numbered migrations in ``migrations/`` and refuse a newer schema."""

from __future__ import annotations

import importlib
import logging
import pkgutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

import migrations

if TYPE_CHECKING:
    from homeserver.storage.database import Database

logger = logging.getLogger(__name__)


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer Parley than this one."""


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


async def apply_migrations(db: Database) -> int:
    """Bring the schema up to date; return the resulting version."""
    all_migrations = known_migrations()
    latest = all_migrations[-1].version if all_migrations else 0
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ts BIGINT NOT NULL)"
    )
    locked = False
    if db.dialect == "mysql":
        # Several instances may start at once against one database.
        row = await db.fetch_one("SELECT GET_LOCK('parley_migrations', 120) AS got")
        locked = bool(row and row["got"])
        if not locked:
            raise RuntimeError("could not take the migration lock within 120 s")
    try:
        applied = await applied_versions(db)
        unknown = applied - {m.version for m in all_migrations}
        if unknown:
            raise SchemaTooNewError(
                f"the database has schema migration(s) {sorted(unknown)} applied, but this Parley "
                f"only knows up to {latest}: upgrade Parley instead of downgrading the database"
            )
        version = max(applied, default=0)
        for migration in all_migrations:
            if migration.version in applied:
                continue
            logger.info("applying migration %04d_%s", migration.version, migration.name)
            statements = migration.upgrade(db.dialect)
            if db.dialect == "sqlite":
                async with db.transaction() as conn:
                    for statement in statements:
                        await db.execute(statement, conn=conn)
                    await db.execute(
                        "INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                        (migration.version, int(time.time() * 1000)),
                        conn=conn,
                    )
            else:
                # MySQL DDL commits implicitly; record each step right after it.
                for statement in statements:
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                    (migration.version, int(time.time() * 1000)),
                )
            version = max(version, migration.version)
        return version
    finally:
        if locked:
            await db.execute("SELECT RELEASE_LOCK('parley_migrations')")

"""Schema migrations upgrade an older database on both backends."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeserver.storage.database import Database
from homeserver.storage.migrate import applied_versions, known_migrations
from tests.support.databases import mysql_database


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        yield f"sqlite://{tmp_path / 'old.db'}"
        return
    with mysql_database("parley_mig") as url:
        yield url


async def test_old_schema_is_upgraded(empty_database_url: str) -> None:
    old = Database(empty_database_url)
    await old.connect()
    first = known_migrations()[0]
    with old.activated():
        await old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ts BIGINT NOT NULL)")
        for statement in first.upgrade(old.dialect):
            await old.execute(statement)
        await old.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                          (first.version, int(time.time() * 1000)))
        await old.execute("INSERT INTO users (user_id, localpart, created_ts) VALUES (?, ?, ?)",
                          ("@old:example.test", "old", 1))
    await old.close()

    upgraded = Database(empty_database_url)
    await upgraded.open()
    with upgraded.activated():
        assert await applied_versions(upgraded) == {m.version for m in known_migrations()}
        rows = await upgraded.fetch("SELECT user_id FROM users")
    await upgraded.close()
    assert rows == [{"user_id": "@old:example.test"}]


async def test_identifier_columns_compare_exactly(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    await db.open()
    with db.activated():
        await db.execute("INSERT INTO users (user_id, localpart, created_ts) VALUES (?, ?, ?)",
                         ("@alice:x", "alice", 1))
        for probe in ("@ALICE:x", "@alice:x  ", "@alicé:x"):
            assert await db.fetch("SELECT user_id FROM users WHERE user_id = ?", (probe,)) == []
        # Distinct case variants may coexist as distinct keys.
        await db.execute("INSERT INTO users (user_id, localpart, created_ts) VALUES (?, ?, ?)",
                         ("@ALICE:x", "ALICE", 1))
    await db.close()

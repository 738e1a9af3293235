"""Schema migrations upgrade an older database on both backends."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from homeserver.storage.database import Database
from homeserver.storage.graph import GraphRepository
from homeserver.storage.migrate import (
    Migration,
    MigrationLockTimeout,
    applied_versions,
    apply_migrations,
    known_migrations,
)
from migrations.ddl import adapt_to_server, collation_for_server, create_table, server_flavour
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


async def test_line_rooms_become_graphs_losslessly(empty_database_url: str) -> None:
    """Migration 0010: a room stored as a line (schema 0001-0005) gets edges, its extremity
    and a state group at every event, equal to the state the line implies."""
    old = Database(empty_database_url)
    await old.connect()
    with old.activated():
        await old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ts BIGINT NOT NULL)")
        for migration in known_migrations():
            if migration.version >= 10:
                continue
            for statement in migration.upgrade(old.dialect):
                await old.execute(statement)
            await old.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                              (migration.version, int(time.time() * 1000)))
        line = [  # (pos, id, type, state_key)
            (1, "$create", "m.room.create", ""), (2, "$join", "m.room.member", "@a:x"),
            (3, "$msg1", "m.room.message", None), (4, "$topic1", "m.room.topic", ""),
            (5, "$msg2", "m.room.message", None), (6, "$topic2", "m.room.topic", ""),
            (7, "$msg3", "m.room.message", None),
        ]
        await old.execute(
            "INSERT INTO rooms (room_id, room_version, creator, is_direct, created_ts, last_event_id, last_depth, "
            "last_pos, purged) VALUES ('!r:x', '11', '@a:x', 0, 1, '$msg3', 7, 7, 0)")
        previous: list[str] = []
        for pos, event_id, event_type, state_key in line:
            pdu = {"type": event_type, "sender": "@a:x", "room_id": "!r:x", "content": {}, "depth": pos,
                   "origin_server_ts": pos, "prev_events": previous, "auth_events": []}
            if state_key is not None:
                pdu["state_key"] = state_key
            await old.execute(
                "INSERT INTO events (stream_pos, event_id, room_id, type, state_key, sender, depth, "
                "origin_server_ts, pdu) VALUES (?, ?, '!r:x', ?, ?, '@a:x', ?, ?, ?)",
                (pos, event_id, event_type, state_key, pos, pos, json.dumps(pdu)))
            if state_key is not None:
                await old.execute(old.upsert_sql("room_state", ["room_id", "type", "state_key"],
                                                 ["room_id", "type", "state_key", "event_id", "stream_pos"]),
                                  ("!r:x", event_type, state_key, event_id, pos))
            previous = [event_id]
    await old.close()

    db = Database(empty_database_url)
    await db.open()
    with db.activated():
        graph = GraphRepository(db)
        edges = await db.fetch("SELECT event_id, prev_event_id FROM event_edges ORDER BY event_id")
        assert {(r["event_id"], r["prev_event_id"]) for r in edges} == {
            (line[i][1], line[i - 1][1]) for i in range(1, len(line))}
        assert [e for e, _ in await graph.extremities("!r:x")] == ["$msg3"]
        groups = {r["event_id"]: r["state_group"] for r in await db.fetch("SELECT event_id, state_group FROM events")}
        create, join = ("m.room.create", ""), ("m.room.member", "@a:x")
        topic = ("m.room.topic", "")
        assert await graph.state_ids(groups["$msg1"]) == {create: "$create", join: "$join"}
        assert await graph.state_ids(groups["$msg2"]) == {create: "$create", join: "$join", topic: "$topic1"}
        current = await graph.state_ids(groups["$msg3"])
        assert current == {create: "$create", join: "$join", topic: "$topic2"}
        rows = await db.fetch("SELECT type, state_key, event_id FROM room_state WHERE room_id = '!r:x'")
        assert {(r["type"], r["state_key"]): r["event_id"] for r in rows} == current
        room = await db.fetch_one("SELECT state_group FROM rooms WHERE room_id = '!r:x'")
        assert room is not None and room["state_group"] == groups["$msg3"]
    await db.close()


def _mysql_only() -> None:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        pytest.skip("the migration lock and step records are MySQL/MariaDB-specific")


# Numbered after every shipped migration, so it is the last one applied.
PROBE = 999


def _broken_then_fixed(fixed: bool) -> list[Migration]:
    def upgrade(dialect: str) -> list[str]:
        second = "CREATE INDEX ix_probe_name ON probe (name)" if fixed else "CREATE INDEX broken ON no_such_table (x)"
        return [create_table(dialect, "probe", [("name", "id", "NOT NULL")]), second]

    return [*known_migrations(), Migration(PROBE, "probe", upgrade)]


async def test_a_failed_migration_can_be_run_again(empty_database_url: str) -> None:
    db = Database(empty_database_url)
    await db.connect()
    with db.activated():
        with pytest.raises(Exception, match="no_such_table"):
            await apply_migrations(db, _broken_then_fixed(fixed=False))
        assert PROBE not in await applied_versions(db)
        # The fixed release starts on the half-migrated database and finishes the job.
        assert await apply_migrations(db, _broken_then_fixed(fixed=True)) == PROBE
        assert PROBE in await applied_versions(db)
        await db.execute("INSERT INTO probe (name) VALUES (?)", ("ok",))
    await db.close()


async def test_a_step_that_ran_but_was_not_recorded_is_recognised(empty_database_url: str) -> None:
    _mysql_only()
    db = Database(empty_database_url)
    await db.connect()
    with db.activated():
        await apply_migrations(db)
        # As if the process died between a CREATE TABLE and its record.
        await db.execute("DELETE FROM schema_version WHERE version = 40")
        await db.execute("DELETE FROM schema_steps WHERE version = 40")
        await apply_migrations(db)
        assert 40 in await applied_versions(db)
    await db.close()


async def test_the_migration_lock_is_per_database(empty_database_url: str) -> None:
    _mysql_only()
    import pymysql

    with mysql_database("parley_mig_other") as other_url:
        name = empty_database_url.rsplit("/", 1)[1]
        holder = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=name)
        try:
            with holder.cursor() as cur:
                # Another instance is migrating the first database.
                cur.execute("SELECT GET_LOCK(CONCAT('parley_migrations_', SHA1(DATABASE())), 0)")
                assert cur.fetchone() == (1,)
            busy = Database(empty_database_url)
            await busy.connect()
            with busy.activated(), pytest.raises(MigrationLockTimeout):
                await apply_migrations(busy, lock_timeout_s=1)
            await busy.close()
            # A second database on the same server is not blocked by it.
            other = Database(other_url)
            await other.open()
            with other.activated():
                assert await applied_versions(other) == {m.version for m in known_migrations()}
            await other.close()
        finally:
            holder.close()


def test_the_exact_collation_is_chosen_by_server_flavour() -> None:
    statement = create_table("mysql", "t", [("name", "id", "NOT NULL")])
    assert "COLLATE=utf8mb4_nopad_bin" in statement
    # MariaDB (what these machines run, and what VERSION() says there).
    assert collation_for_server("10.11.6-MariaDB-0+deb12u1") == "utf8mb4_nopad_bin"
    assert adapt_to_server(statement, "10.11.6-MariaDB-0+deb12u1") == statement
    assert collation_for_server("5.5.5-10.6.12-MariaDB-log") == "utf8mb4_nopad_bin"
    # Oracle MySQL 8 has no utf8mb4_nopad_bin; utf8mb4_0900_bin is binary and NO PAD too.
    assert collation_for_server("8.0.36") == "utf8mb4_0900_bin"
    assert collation_for_server("8.4.0-commercial") == "utf8mb4_0900_bin"
    assert "COLLATE=utf8mb4_0900_bin" in adapt_to_server(statement, "8.0.36-0ubuntu0.22.04.1")
    assert "nopad" not in adapt_to_server(statement, "9.1.0")
    # Servers with only PAD SPACE collations would let "@alice:x " equal "@alice:x".
    with pytest.raises(ValueError, match="MySQL 8.0 or later"):
        collation_for_server("5.7.44-log")
    with pytest.raises(ValueError, match="10.2"):
        collation_for_server("10.1.48-MariaDB")
    assert server_flavour("10.11.6-MariaDB-0+deb12u1") == ("mariadb", (10, 11, 6))

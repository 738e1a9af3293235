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

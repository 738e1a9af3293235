"""Placeholders hold no keys: the database never has key material for a person who has not registered.

The server side of "Alice writes to an address nobody registered yet": the
conversation (invitation, events) is kept; there is no device or key to
encrypt to until the person registers and their own client uploads keys; then
Alice's client learns of the new device through ``/sync`` device lists and can
encrypt to it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeserver.storage.database import Database
from homeserver.storage.migrate import applied_versions, known_migrations
from tests.homeserver.test_lookup import (
    email_config,
    generate_key_upload,
    lookup,
    new_email,
    query_keys,
    register_with_email,
)
from tests.homeserver.test_media_rooms import send
from tests.support.databases import mysql_database
from tests.support.server import RunningServer, serve_homeserver
from tests.support.smtp import SmtpSink

# Tables that hold keys, devices or credentials: none may have a row for a placeholder.
KEY_TABLES = {"devices", "access_tokens", "e2e_device_keys", "e2e_one_time_keys", "e2e_fallback_keys",
              "to_device_messages", "room_key_backup_versions", "room_key_backup_keys", "pairing_sessions"}


async def rows_mentioning(server: RunningServer, needle: str) -> dict[str, list[str]]:
    """Every row of every table whose text contains ``needle``, by table (a grep of the DB)."""
    db = server.hs.database
    with db.activated():
        if db.dialect == "sqlite":
            tables = [str(r["name"]) for r in await db.fetch(
                "SELECT name FROM sqlite_master WHERE type = 'table'", [])]
        else:
            tables = [str(r["t"]) for r in await db.fetch(
                "SELECT table_name AS t FROM information_schema.tables WHERE table_schema = DATABASE()", [])]
        found: dict[str, list[str]] = {}
        for table in tables:
            for row in await db.fetch(f"SELECT * FROM {table}", []):
                text = " ".join(v.decode("utf-8", "replace") if isinstance(v, bytes) else str(v)
                                for v in row.values())
                if needle in text:
                    found.setdefault(table, []).append(text)
    return found


def assert_no_key_material(found: dict[str, list[str]]) -> None:
    # No key table holds a row for the person; tables added later (event graph,
    # wake-up queue, ...) are covered by the marker scan below.
    assert not set(found) & KEY_TABLES, sorted(set(found) & KEY_TABLES)
    for table, rows in found.items():
        for text in rows:  # nor do other tables carry key fields for it
            for marker in ("signed_pre_key", "curve25519:", "signed_x25519", "one_time_prekey",
                           '"seed"', "private"):
                assert marker not in text, (table, marker)


async def test_db_holds_no_key_of_an_unregistered_person(make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(**email_config(smtp_sink))) as server:
        alice = await server.register()
        bob_email = new_email()
        bob_id = (await lookup(server, alice, bob_email)).json()["user_id"]
        assert set(KEY_TABLES) & set(await rows_mentioning(server, bob_id)) == set()
        # Alice starts the DM and writes twice; her client cannot encrypt to Bob yet.
        response = await server.api("POST", "createRoom", alice, json={
            "preset": "trusted_private_chat", "is_direct": True, "invite": [bob_id]})
        assert response.status_code == 200, response.text
        room_id = response.json()["room_id"]
        first = await send(server, alice, room_id, {"algorithm": "im.parley.olm.v1", "body": "one"})
        second = await send(server, alice, room_id, {"algorithm": "im.parley.olm.v1", "body": "two"})
        assert await query_keys(server, alice, bob_id) == {}
        assert_no_key_material(await rows_mentioning(server, bob_id))

        # Alice's long-poll position before Bob arrives.
        synced = await server.api("GET", "sync", alice, params={"timeout": 0})
        since = synced.json()["next_batch"]

        # Bob registers with the address (and a name of his own); his client makes and uploads keys.
        bob = await register_with_email(server, smtp_sink, bob_email, username="bobchosen")
        assert bob.user_id == f"@bobchosen:{server.config.server_name}"  # the name he chose
        lookup_id, bob_id = bob_id, bob.user_id  # the looked-up id is an alias of his account now
        assert_no_key_material(await rows_mentioning(server, lookup_id))
        found = await rows_mentioning(server, bob_id)
        assert not {t for t in found if t.startswith("e2e_")}  # a login device, still no key
        upload = generate_key_upload(bob.user_id, bob.device_id, 0)
        response = await server.api("POST", "keys/upload", bob, json=upload)
        assert response.status_code == 200, response.text

        # Alice learns of Bob's first real device and sees exactly the keys Bob's client made.
        synced = await server.api("GET", "sync", alice, params={"timeout": 0, "since": since})
        assert bob_id in synced.json().get("device_lists", {}).get("changed", [])
        devices = await query_keys(server, alice, bob_id)
        assert list(devices) == [bob.device_id]
        assert devices[bob.device_id]["keys"] == upload["device_keys"]["keys"]

        # Bob finds the conversation (a Parley DM joins the invitee at once) with both events.
        synced = await server.api("GET", "sync", bob, params={"timeout": 0})
        assert room_id in synced.json()["rooms"]["join"]
        messages = await server.api("GET", f"rooms/{room_id}/messages", bob,
                                    params={"dir": "b", "limit": 50})
        ids = [e["event_id"] for e in messages.json()["chunk"]]
        assert first in ids and second in ids
        # At no point was there anything private of Bob's: only what his client published.
        for table, rows in (await rows_mentioning(server, bob_id)).items():
            for text in rows:
                assert '"seed"' not in text and "private" not in text, table


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        yield f"sqlite://{tmp_path / 'old.db'}"
        return
    with mysql_database("parley_mig80") as url:
        yield url


async def test_migration_0080_removes_server_made_placeholder_keys(empty_database_url: str) -> None:
    """Placeholders reserved by older servers had a server-made device: the migration drops it."""
    old = Database(empty_database_url)
    await old.connect()
    with old.activated():
        await old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, "
                          "applied_ts BIGINT NOT NULL)")
        for migration in known_migrations():
            if migration.version >= 80:
                break
            for statement in migration.upgrade(old.dialect):
                await old.execute(statement)
            await old.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                              (migration.version, int(time.time() * 1000)))
        for user_id, placeholder in (("@uplaceholder:example.test", 1), ("@real:example.test", 0)):
            await old.execute("INSERT INTO users (user_id, localpart, is_placeholder, created_ts) "
                              "VALUES (?, ?, ?, ?)", (user_id, user_id[1:5], placeholder, 1))
            await old.execute("INSERT INTO devices (user_id, device_id, created_ts) VALUES (?, ?, ?)",
                              (user_id, "DEV", 1))
            await old.execute("INSERT INTO e2e_device_keys (user_id, device_id, ed25519_key, key_json, "
                              "updated_ts) VALUES (?, ?, ?, ?, ?)", (user_id, "DEV", "k", "{}", 1))
            await old.execute("INSERT INTO e2e_one_time_keys (user_id, device_id, algorithm, key_id, "
                              "key_json, created_ts) VALUES (?, ?, ?, ?, ?, ?)",
                              (user_id, "DEV", "im.parley.signed_x25519", "1", "{}", 1))
    await old.close()

    upgraded = Database(empty_database_url)
    await upgraded.open()
    try:
        with upgraded.activated():
            assert 80 in await applied_versions(upgraded)
            for table in ("devices", "e2e_device_keys", "e2e_one_time_keys"):
                rows = await upgraded.fetch(f"SELECT user_id FROM {table} ORDER BY user_id")
                assert rows == [{"user_id": "@real:example.test"}], table
            users = await upgraded.fetch("SELECT user_id FROM users ORDER BY user_id")
            assert len(users) == 2  # the placeholder account itself stays
    finally:
        await upgraded.close()

"""A format-1 local store (fixtures/store_v1.json, written by format-1 code) migrates to format 2."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from client_tk.core.store import LocalStore
from client_tk.core.store_migration import migrate_store, store_format
from common.crypto import CryptoError, WrongPassword, decrypt_local, derive_local_storage_key
from common.crypto.account_keys import AccountKeys, LegacyKeys
from common.crypto.serialization import b64e
from tests.client.fixtures.generate_store_v1 import MESSAGES, PASSWORD, RECORDS, SEED

FIXTURE: dict[str, list[list[Any]]] = json.loads(
    (Path(__file__).parent / "fixtures" / "store_v1.json").read_text())
BLOBS = {("meta", 1), ("kv", 2), ("messages", 3)}  # (table, column) holding bytes


def restore(folder: Path) -> Path:
    """Rebuild the format-1 store.db from the dump (schema by today's LocalStore)."""
    LocalStore(folder).close()
    path = folder / "store.db"
    db = sqlite3.connect(path)
    for table, rows in FIXTURE.items():
        for row in rows:
            values = [bytes.fromhex(v) if (table, i) in BLOBS else v for i, v in enumerate(row)]
            db.execute(f"INSERT INTO {table} VALUES ({','.join('?' * len(values))})", values)
    db.commit()
    db.close()
    return path


def all_blobs(path: Path) -> list[tuple[str, str, bytes]]:
    db = sqlite3.connect(path)
    try:
        return ([("kv", ns + "|" + k, bytes(b)) for ns, k, b in db.execute("SELECT * FROM kv")]
                + [("messages", str(i), bytes(b)) for _r, _t, i, b in db.execute("SELECT * FROM messages")])
    finally:
        db.close()


def test_fixture_is_format_1_and_readable_by_the_seed(tmp_path: Path) -> None:
    path = restore(tmp_path / "acct")
    db = sqlite3.connect(path)
    assert store_format(db) == 1
    db.close()
    store = LocalStore(tmp_path / "acct")
    store.unlock(SEED)
    assert store.get("secrets", "access_token") == RECORDS[("secrets", "access_token")]
    store.close()


async def test_v1_store_migrates_to_independent_keys(tmp_path: Path) -> None:
    path = restore(tmp_path / "acct")
    with pytest.raises(WrongPassword):  # nothing changes on a wrong password
        migrate_store(path, "wrong password", allow_weak=True)
    keys = migrate_store(path, PASSWORD, allow_weak=True)
    assert isinstance(keys, AccountKeys) and keys.identity_seed == SEED and keys.backup is None
    db = sqlite3.connect(path)
    assert store_format(db) == 2
    assert db.execute("SELECT value FROM meta WHERE name='identity'").fetchone() is None
    assert db.execute("SELECT value FROM meta WHERE name='user_id'").fetchone()[0] == b"@alice:example.org"
    db.close()

    # Today's LocalStore reads the migrated store, rooted at the storage key.
    store = LocalStore(tmp_path / "acct")
    store.unlock(keys.storage_key)
    for (ns, key), value in RECORDS.items():
        expected = None if (ns, key) == ("secrets", "backup") else value  # the escrow is gone
        assert store.get(ns, key) == expected
    assert [m["event_id"] for m in store.room_messages("!room:example.org")] == ["$e1", "$e2"]
    assert [m["body"] for m in store.room_messages("!other:example.org")] == ["other room"]
    # ... plus one record: the server still holds the login key format 1 derived from the seed.
    assert store.get("account", "login_key") == {"uploaded": False,
                                                 "previous": b64e(LegacyKeys(SEED).login_seed)}
    assert len(all_blobs(path)) == len(RECORDS) - 1 + 1 + len(MESSAGES)
    # New writes work as before.
    store.put("rooms", "!new:example.org", {"room_id": "!new:example.org"})
    await store.commit()
    store.close()

    # Whoever holds the identity seed alone reads nothing of the migrated store.
    legacy_keys = {derive_local_storage_key(SEED, "record:" + space) for space in
                   ("secrets", "sessions", "keys", "rooms", "messages")}
    for table, name, blob in all_blobs(path):
        ns, hkey = name.split("|", 1) if table == "kv" else ("messages", name)
        for legacy_key in legacy_keys:
            with pytest.raises(CryptoError):
                decrypt_local(legacy_key, blob, context=f"{ns}\x00{hkey}".encode())

    # Migrating again only opens the container (idempotent).
    assert migrate_store(path, PASSWORD, allow_weak=True) == keys


def test_keep_backup_starts_a_new_backup_key(tmp_path: Path) -> None:
    path = restore(tmp_path / "acct")
    keys = migrate_store(path, PASSWORD, keep_backup=True, allow_weak=True)
    assert keys.backup is not None and keys.backup.version == 1
    assert keys.backup.key != bytes(range(200, 232))  # not the legacy secret

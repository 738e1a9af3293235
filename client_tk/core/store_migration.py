"""Migrate a local store from format 1 (keys derived from the identity seed) to format 2.

Format 1 (every store written before format 2 existed) has no
``store_format`` in ``meta``; ``meta.identity`` is the password envelope of the
identity key and every record key is ``derive_local_storage_key(S, ...)`` of the
identity seed ``S`` (see :class:`common.crypto.account_keys.LegacyKeys`).

Format 2 has ``meta.store_format = b"2"`` and ``meta.account_keys``: the
password envelope of :class:`~common.crypto.account_keys.AccountKeys`; the
record keys are derived the same way but from the independent random
``storage_key``, so :meth:`LocalStore.unlock` is simply given ``storage_key``
instead of ``S``.

:func:`migrate_store` rewrites every ``kv`` and ``messages`` row under the new
keys (new index HMACs included) and swaps the envelope, in **one** SQLite
transaction: a crash leaves format 1 intact, never a mix.  The legacy backup
secret (``secrets``/``backup``) is not carried over: it was a standing escrow
of every received message key (see ``docs/SECURITY-MODEL.md``).

The same transaction records (``account``/``login_key``) that the server still
knows the *legacy* login key (the one derived from the identity seed) until the
client replaces it with the new independent one
(:meth:`client_tk.core.account_keyring.AccountKeyring.ensure_registered`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import sqlite3
from pathlib import Path
from typing import Any

from common.crypto import decrypt_local, encrypt_local
from common.crypto.account_keys import (
    STORE_FORMAT,
    AccountKeys,
    LegacyKeys,
    migrate_legacy,
    open_sealed_keys,
    seal_account_keys,
)
from common.crypto.envelope import DEFAULT_KDF, KdfParams, derive_local_storage_key
from common.crypto.serialization import b64e

JsonDict = dict[str, Any]
LEGACY_BACKUP = ("secrets", "backup")
LOGIN_RECORD = ("account", "login_key")  # {"uploaded": bool, "previous": b64 seed | absent}


class _Keys:
    """Record keys of one store root (the identity seed in format 1, storage_key in 2)."""

    def __init__(self, root: bytes) -> None:
        self.root = root
        self.index = derive_local_storage_key(root, "index")
        self._records: dict[str, bytes] = {}

    def record(self, ns: str) -> bytes:
        if ns not in self._records:
            self._records[ns] = derive_local_storage_key(self.root, "record:" + ns)
        return self._records[ns]

    def hash(self, text: str) -> str:
        return hmac.new(self.index, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def open(self, ns: str, hkey: str, blob: bytes) -> JsonDict:
        value = json.loads(decrypt_local(self.record(ns), blob, context=f"{ns}\x00{hkey}".encode()))
        assert isinstance(value, dict)
        return value

    def seal(self, ns: str, hkey: str, value: JsonDict) -> bytes:
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
        return encrypt_local(self.record(ns), data, context=f"{ns}\x00{hkey}".encode())


def store_format(db: sqlite3.Connection) -> int:
    row = db.execute("SELECT value FROM meta WHERE name='store_format'").fetchone()
    return 1 if row is None else int(bytes(row[0]).decode())


def migrate_store(path: Path, password: str | bytes, *, keep_backup: bool = False,
                  kdf: KdfParams = DEFAULT_KDF, allow_weak: bool = False) -> AccountKeys:
    """Bring ``store.db`` at ``path`` to format 2 and return its keys.

    A format-2 store is only opened (idempotent).  Raises
    :class:`~common.crypto.WrongPassword` before changing anything.
    """
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=FULL")
        if store_format(db) >= STORE_FORMAT:
            row = db.execute("SELECT value FROM meta WHERE name='account_keys'").fetchone()
            if row is None:
                raise FileNotFoundError(f"{path}: no account keys in a format-2 store")
            opened = open_sealed_keys(bytes(row[0]), password, allow_weak=allow_weak)
            assert isinstance(opened, AccountKeys)
            return opened
        row = db.execute("SELECT value FROM meta WHERE name='identity'").fetchone()
        if row is None:
            raise FileNotFoundError(f"{path}: no identity envelope to migrate")
        legacy = open_sealed_keys(bytes(row[0]), password, allow_weak=allow_weak)
        assert isinstance(legacy, LegacyKeys)
        keys = migrate_legacy(legacy, keep_backup=keep_backup)
        sealed = seal_account_keys(keys, password, params=kdf, allow_weak=allow_weak)
        login = {"uploaded": False, "previous": b64e(legacy.login_seed)}
        _rewrite(db, _Keys(legacy.identity_seed), _Keys(keys.storage_key), sealed, login)
        return keys
    finally:
        db.close()


def _rewrite(db: sqlite3.Connection, old: _Keys, new: _Keys, sealed: bytes, login: JsonDict) -> None:
    kv = db.execute("SELECT ns, key, blob FROM kv").fetchall()
    messages = db.execute("SELECT ts, id, blob FROM messages").fetchall()
    kv_rows: list[tuple[str, str, bytes]] = []
    for ns, hkey, blob in kv:
        record = old.open(ns, hkey, bytes(blob))
        if (ns, record["k"]) == LEGACY_BACKUP:
            continue  # the standing escrow is not carried over
        new_hkey = new.hash(str(record["k"]))
        kv_rows.append((ns, new_hkey, new.seal(ns, new_hkey, record)))
    ns, name = LOGIN_RECORD
    login_hkey = new.hash(name)
    kv_rows.append((ns, login_hkey, new.seal(ns, login_hkey, {"k": name, "v": login})))
    msg_rows: list[tuple[str, int, str, bytes]] = []
    for ts, hid, blob in messages:
        value = old.open("messages", hid, bytes(blob))
        new_hid = new.hash("event:" + str(value["event_id"]))
        msg_rows.append((new.hash("room:" + str(value["room_id"])), int(ts), new_hid,
                         new.seal("messages", new_hid, value)))
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM kv")
        db.execute("DELETE FROM messages")
        db.executemany("INSERT INTO kv (ns, key, blob) VALUES (?, ?, ?)", kv_rows)
        db.executemany("INSERT INTO messages (room, ts, id, blob) VALUES (?, ?, ?, ?)", msg_rows)
        db.execute("DELETE FROM meta WHERE name='identity'")
        db.executemany("INSERT INTO meta (name, value) VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET value=excluded.value",
                       [("account_keys", sealed), ("store_format", str(STORE_FORMAT).encode())])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise

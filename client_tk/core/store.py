"""The local store: one folder per account, everything secret encrypted at rest.

Why SQLite (stdlib ``sqlite3``, run in a worker thread) rather than JSON files:
one sync batch changes many records at once (ratchet sessions, consumed
one-time keys, received sender keys, cached messages, the sync token) and they
must change *together*: a transaction gives that atomicity for free, and with
``synchronous=FULL`` a commit is on disk before it returns.  The client
commits a batch **before** it acknowledges it (before the next ``/sync``
carries the new ``since``, which is also the to-device acknowledgement), so a
crash at any point either loses nothing or replays a batch whose effects were
not yet written.

Layout: ``<root>/<account>/`` (0700) holds ``store.db`` (0600; SQLite puts
its journal next to it with the same mode).  Tables:

``meta(name, value)``   plaintext, non-secret: user id, device id, homeserver
                        URL, ``store_format`` (``2``); the account keys as a
                        *password envelope* (``account_keys``,
                        :mod:`client_tk.core.account_keyring`).
``kv(ns, key, blob)``   every other record: ``key`` is an HMAC of the real
                        key (so contact ids do not show on disk), ``blob`` is
                        :func:`encrypt_local` under a per-namespace key derived
                        from the store's root key, bound to ``ns``/``key``.
                        The root is the device's own random storage key
                        (format 2); format 1 used the identity seed
                        (:mod:`client_tk.core.store_migration` moves it).
``messages(room, ts, id, blob)``  the decrypted-message cache, encrypted the
                        same way; ``room`` and ``id`` are HMACs.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import re
import sqlite3
import threading
from pathlib import Path
from typing import Any

from common.crypto import decrypt_local, derive_local_storage_key, encrypt_local

JsonDict = dict[str, Any]
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS kv (ns TEXT NOT NULL, key TEXT NOT NULL, blob BLOB NOT NULL,
                               PRIMARY KEY (ns, key));
CREATE TABLE IF NOT EXISTS messages (room TEXT NOT NULL, ts INTEGER NOT NULL, id TEXT NOT NULL,
                                     blob BLOB NOT NULL, PRIMARY KEY (id));
CREATE INDEX IF NOT EXISTS messages_room ON messages (room, ts);
"""


def account_dir_name(user_id: str) -> str:
    """A filesystem-safe folder name for a user id."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", user_id.lstrip("@"))


def secure_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


def atomic_write(path: Path, data: bytes) -> None:
    """Write temp + fsync + rename + fsync(dir): the file is old or new, never torn."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    dfd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)


class LocalStore:
    """Encrypted key/value records plus the message cache for one account."""

    def __init__(self, folder: Path) -> None:
        self.folder = secure_dir(folder)
        self.path = folder / "store.db"
        if not self.path.exists():
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
        os.chmod(self.path, 0o600)
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=DELETE")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._index_key: bytes | None = None
        self._seed: bytes | None = None
        # Pending writes of the current batch: (ns, key) -> value or None (delete).
        self._pending: dict[tuple[str, str], JsonDict | None] = {}
        self._pending_messages: dict[str, tuple[str, int, JsonDict]] = {}
        self._cache: dict[tuple[str, str], JsonDict | None] = {}

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ meta
    def get_meta(self, name: str) -> bytes | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE name=?", (name,)).fetchone()
        return None if row is None else bytes(row[0])

    def set_meta(self, values: dict[str, bytes]) -> None:
        """Write plaintext metadata at once (durable on return)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for name, value in values.items():
                    self._db.execute(
                        "INSERT INTO meta (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (name, value))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ---------------------------------------------------------- unlock/keys
    def unlock(self, root_key: bytes) -> None:
        """Derive the record keys from the store's root key (after the password opened it)."""
        self._seed = root_key
        self._index_key = derive_local_storage_key(root_key, "index")
        self._keys.clear()
        self._cache.clear()

    @property
    def unlocked(self) -> bool:
        return self._seed is not None

    def _key(self, ns: str) -> bytes:
        if self._seed is None:
            raise RuntimeError("store is locked")
        key = self._keys.get(ns)
        if key is None:
            key = self._keys[ns] = derive_local_storage_key(self._seed, "record:" + ns)
        return key

    def _hash(self, text: str) -> str:
        assert self._index_key is not None, "store is locked"
        return hmac.new(self._index_key, text.encode("utf-8"), hashlib.sha256).hexdigest()

    def _seal(self, ns: str, hkey: str, value: JsonDict) -> bytes:
        data = json.dumps(value, separators=(",", ":")).encode("utf-8")
        return encrypt_local(self._key(ns), data, context=f"{ns}\x00{hkey}".encode())

    def _open(self, ns: str, hkey: str, blob: bytes) -> JsonDict:
        data = decrypt_local(self._key(ns), blob, context=f"{ns}\x00{hkey}".encode())
        value = json.loads(data)
        assert isinstance(value, dict)
        return value

    # ------------------------------------------------------------- records
    def get(self, ns: str, key: str) -> JsonDict | None:
        if (ns, key) in self._pending:
            return self._pending[(ns, key)]
        if (ns, key) in self._cache:
            return self._cache[(ns, key)]
        hkey = self._hash(key)
        with self._lock:
            row = self._db.execute("SELECT blob FROM kv WHERE ns=? AND key=?", (ns, hkey)).fetchone()
        value = None if row is None else self._open(ns, hkey, bytes(row[0]))["v"]
        self._cache[(ns, key)] = value
        return value

    def items(self, ns: str) -> dict[str, JsonDict]:
        """Every record of a namespace (committed and pending)."""
        with self._lock:
            rows = self._db.execute("SELECT key, blob FROM kv WHERE ns=?", (ns,)).fetchall()
        out: dict[str, JsonDict] = {}
        for hkey, blob in rows:
            record = self._open(ns, hkey, bytes(blob))
            out[str(record["k"])] = record["v"]
        for (pns, key), value in self._pending.items():
            if pns != ns:
                continue
            if value is None:
                out.pop(key, None)
            else:
                out[key] = value
        return out

    def put(self, ns: str, key: str, value: JsonDict) -> None:
        """Stage a write; it reaches the disk with the next :meth:`commit`."""
        self._pending[(ns, key)] = value

    def delete(self, ns: str, key: str) -> None:
        self._pending[(ns, key)] = None

    def put_message(self, room_id: str, event_id: str, ts: int, value: JsonDict) -> None:
        self._pending_messages[event_id] = (room_id, ts, value)

    def rollback(self) -> None:
        """Discard every staged change (a batch that failed before its commit)."""
        self._pending.clear()
        self._pending_messages.clear()

    @property
    def dirty(self) -> bool:
        return bool(self._pending or self._pending_messages)

    async def commit(self, meta: dict[str, bytes] | None = None) -> None:
        """Write every staged change (and ``meta``, if given) in one durable transaction."""
        if not self.dirty and not meta:
            return
        pending, self._pending = self._pending, {}
        messages, self._pending_messages = self._pending_messages, {}
        rows: list[tuple[str, str, bytes | None]] = []
        for (ns, key), value in pending.items():
            hkey = self._hash(key)
            rows.append((ns, hkey, None if value is None else self._seal(ns, hkey, {"k": key, "v": value})))
        msg_rows = []
        for event_id, (room_id, ts, value) in messages.items():
            hid = self._hash("event:" + event_id)
            msg_rows.append((self._hash("room:" + room_id), ts, hid, self._seal("messages", hid, value)))
        try:
            await asyncio.to_thread(self._write, rows, msg_rows, meta or {})
        except BaseException:
            # Nothing was written: put the batch back so a retry writes it.
            for k, v in pending.items():
                self._pending.setdefault(k, v)
            for k2, v2 in messages.items():
                self._pending_messages.setdefault(k2, v2)
            raise
        for (ns, key), value in pending.items():
            self._cache[(ns, key)] = value

    def _write(self, rows: list[tuple[str, str, bytes | None]],
               msg_rows: list[tuple[str, int, str, bytes]], meta: dict[str, bytes]) -> None:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for name, value in meta.items():
                    self._db.execute(
                        "INSERT INTO meta (name, value) VALUES (?, ?) "
                        "ON CONFLICT(name) DO UPDATE SET value=excluded.value", (name, value))
                for ns, hkey, blob in rows:
                    if blob is None:
                        self._db.execute("DELETE FROM kv WHERE ns=? AND key=?", (ns, hkey))
                    else:
                        self._db.execute(
                            "INSERT INTO kv (ns, key, blob) VALUES (?, ?, ?) "
                            "ON CONFLICT(ns, key) DO UPDATE SET blob=excluded.blob", (ns, hkey, blob))
                for room, ts, hid, blob in msg_rows:
                    self._db.execute(
                        "INSERT INTO messages (room, ts, id, blob) VALUES (?, ?, ?, ?) "
                        "ON CONFLICT(id) DO UPDATE SET blob=excluded.blob, ts=excluded.ts",
                        (room, ts, hid, blob))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    # ------------------------------------------------------- message cache
    def get_message(self, event_id: str) -> JsonDict | None:
        pending = self._pending_messages.get(event_id)
        if pending is not None:
            return pending[2]
        hid = self._hash("event:" + event_id)
        with self._lock:
            row = self._db.execute("SELECT blob FROM messages WHERE id=?", (hid,)).fetchone()
        return None if row is None else self._open("messages", hid, bytes(row[0]))

    def room_messages(self, room_id: str, limit: int | None = None) -> list[JsonDict]:
        """Cached messages of a room, oldest first (the newest ``limit``)."""
        room = self._hash("room:" + room_id)
        with self._lock:
            rows = self._db.execute(
                "SELECT id, blob FROM messages WHERE room=? ORDER BY ts DESC LIMIT ?",
                (room, -1 if limit is None else limit)).fetchall()
        out = {str(hid): self._open("messages", str(hid), bytes(blob)) for hid, blob in rows}
        for event_id, (rid, _ts, value) in self._pending_messages.items():
            if rid == room_id:
                out[self._hash("event:" + event_id)] = value
        msgs = sorted(out.values(), key=lambda m: (int(m.get("ts", 0)), str(m.get("event_id"))))
        return msgs[-limit:] if limit else msgs

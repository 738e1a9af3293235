"""Opt-in server-side key backup entries, bound to a backup version.

With backup on, a client seals each message key it wants to keep for later
devices under the backup key (:class:`~common.crypto.account_keys.BackupKey`,
the one the user writes down as a recovery key) and uploads the entry to the
backup version it belongs to.  Entry (JSON, stored by the server as opaque
``session_data``)::

    {"v": 1, "backup_version": n,
     "ciphertext": <b64 encrypt_local(entry key, message key, context)>}

    entry key = HKDF-SHA256(backup key, salt=b"Parley key backup",
                            info=b"Parley key backup v1:entry", 32)
    context   = u32be(version) || room id || 0x00 || event id

The context binds an entry to its room, event and version: the server cannot
move an entry to another event or serve an entry of an old version as a new
one.

What this costs (``docs/SECURITY-MODEL.md``): whoever holds a backup key reads
every message key sealed under it -- the backup is a deliberate exception to
forward secrecy.  Rotation (:meth:`AccountKeys.rotate_backup`, on every device
removal) makes a new key and version: the removed device's key opens nothing
sealed afterwards, and the client deletes the old version once it has
re-sealed what it keeps.
"""

from __future__ import annotations

import struct
from typing import Any

from common.crypto import primitives as P
from common.crypto.account_keys import BackupKey
from common.crypto.envelope import decrypt_local, encrypt_local
from common.crypto.errors import InvalidHeader, UnsupportedVersion
from common.crypto.serialization import JsonDict, b64d, b64e, get_int

ENTRY_VERSION = 1


def _entry_key(backup: BackupKey) -> bytes:
    return P.hkdf_sha256(backup.key, salt=b"Parley key backup",
                         info=b"Parley key backup v1:entry", length=32)


def _context(version: int, room_id: str, event_id: str) -> bytes:
    return struct.pack(">I", version) + room_id.encode() + b"\x00" + event_id.encode()


def seal_backup_entry(backup: BackupKey, room_id: str, event_id: str, message_key: bytes) -> JsonDict:
    blob = encrypt_local(_entry_key(backup), message_key,
                         context=_context(backup.version, room_id, event_id))
    return {"v": ENTRY_VERSION, "backup_version": backup.version, "ciphertext": b64e(blob)}


def open_backup_entry(backup: BackupKey, room_id: str, event_id: str, entry: Any) -> bytes:
    """The message key; :class:`DecryptionFailed` for another key, room, event or version."""
    if not isinstance(entry, dict):
        raise InvalidHeader("backup entry: expected an object")
    if entry.get("v") != ENTRY_VERSION:
        raise UnsupportedVersion(f"backup entry version {entry.get('v')!r}")
    version = get_int(entry, "backup_version")
    blob = b64d(entry.get("ciphertext"), field="ciphertext")
    return decrypt_local(_entry_key(backup), blob, context=_context(version, room_id, event_id))


__all__ = ["open_backup_entry", "seal_backup_entry"]

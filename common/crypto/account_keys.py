"""Separate keys for separate jobs: the account key container (store format 2).

Today's layout (store format 1, :class:`LegacyKeys`) derives everything from
the identity seed ``S`` with HKDF (:func:`~common.crypto.envelope.derive_local_storage_key`):
the store's index and record keys (``"index"``, ``"record:<ns>"``), the login
key (``"login key"``) and the history key of the ``self`` copies
(``"history"``).  Whoever holds ``S`` -- every paired device, since pairing
sends it -- holds all of them, and none can rotate without changing the
identity.

Format 2 (:class:`AccountKeys`) makes them **independent random keys**:

=================  =========================  ======================================
key                scope                      rotates when
=================  =========================  ======================================
``identity_seed``  the account (Ed25519 IK)   the user resets their identity
``storage_key``    this device only; never    the store is re-keyed (never leaves it)
                   sent anywhere
``login_seed``     the account's key login    a device is removed (:meth:`rotate_login`;
                   (Ed25519, PUT login_key)   the client then PUTs the new public key)
``backup``         opt-in server key backup   a device is removed (:meth:`rotate_backup`:
                   (``None`` = off)           new random key, next version)
=================  =========================  ======================================

Compromise of one reveals nothing about the others: none is derived from
another (``storage_key`` is the HKDF root of the store's per-namespace keys, in
place of ``S``).  The container is versioned JSON ``{"type": "account_keys",
"v": 1, "store_format": 2, ...}`` sealed in a password envelope
(:func:`seal_account_keys`); :func:`open_sealed_keys` opens either format and
says which it found, so a client can run :func:`migrate_legacy` once.

:func:`migrate_legacy` keeps the identity (contacts keep their safety
numbers), draws fresh storage and login keys, and does **not** carry the legacy
backup secret over -- it was a standing escrow of every received message key;
with ``keep_backup=True`` it starts a *new* backup key and version instead.
The returned :class:`LegacyKeys` opens the old records exactly once, to
re-encrypt them (``client_tk/core/store_migration.py``).

Recovery key (:func:`encode_recovery_key`): the backup key the user writes
down, as 14 groups of 4 Crockford base32 characters: a format byte, the 32
key bytes and a CRC-16 (CCITT, MSB first).  One mistyped character changes at
most 5 consecutive bits, and a CRC-16 detects every burst of up to 16 bits, so
any single wrong character is always caught (not just probably).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.crypto import primitives as P
from common.crypto.envelope import (
    DEFAULT_KDF,
    KdfParams,
    decrypt_with_password,
    derive_local_storage_key,
    encrypt_with_password,
)
from common.crypto.errors import InvalidHeader, InvalidKey
from common.crypto.keys import IdentityKeyPair
from common.crypto.serialization import JsonDict, b64d, b64e, check_version, dumps, get_int, loads

STORE_FORMAT_LEGACY = 1
STORE_FORMAT = 2
RECOVERY_PREFIX = b"\x52"  # recovery key format byte
_B32 = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: no I, L, O, U
_STD32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


@dataclass(frozen=True)
class BackupKey:
    """The opt-in backup's key and the server-side version it belongs to."""

    key: bytes
    version: int

    def to_dict(self) -> JsonDict:
        return {"key": b64e(self.key), "version": self.version}

    @classmethod
    def from_dict(cls, d: Any) -> BackupKey:
        if not isinstance(d, dict):
            raise InvalidHeader("backup: expected an object")
        return cls(b64d(d.get("key"), length=32, field="backup key"), get_int(d, "version"))


@dataclass(frozen=True)
class AccountKeys:
    """Format-2 key container: four independent keys (see the module docstring)."""

    identity_seed: bytes
    storage_key: bytes
    login_seed: bytes
    backup: BackupKey | None = None

    TYPE = "account_keys"
    VERSIONS = (1,)

    @classmethod
    def generate(cls, identity: IdentityKeyPair | None = None) -> AccountKeys:
        seed = (identity or IdentityKeyPair.generate()).seed
        return cls(seed, P.random_bytes(32), P.random_bytes(32))

    @property
    def identity(self) -> IdentityKeyPair:
        return IdentityKeyPair.from_seed(self.identity_seed)

    @property
    def login_key(self) -> Ed25519PrivateKey:
        """The Ed25519 private key for ``im.parley.login.signature``."""
        return P.load_ed25519_private(self.login_seed)

    @property
    def login_public(self) -> bytes:
        return P.ed25519_public_bytes(self.login_key)

    def enable_backup(self) -> AccountKeys:
        """Opt in: a fresh backup key at version 1 (or the next version)."""
        version = 1 if self.backup is None else self.backup.version + 1
        return replace(self, backup=BackupKey(P.random_bytes(32), version))

    def disable_backup(self) -> AccountKeys:
        return replace(self, backup=None)

    def rotate_backup(self) -> AccountKeys:
        """After a device removal: what the removed device knew opens nothing new."""
        return self.enable_backup() if self.backup is not None else self

    def rotate_login(self) -> AccountKeys:
        return replace(self, login_seed=P.random_bytes(32))

    def to_dict(self) -> JsonDict:
        return {"type": self.TYPE, "v": 1, "store_format": STORE_FORMAT,
                "identity_seed": b64e(self.identity_seed), "storage_key": b64e(self.storage_key),
                "login_seed": b64e(self.login_seed),
                "backup": None if self.backup is None else self.backup.to_dict()}

    @classmethod
    def from_dict(cls, d: Any) -> AccountKeys:
        check_version(d, cls.TYPE, cls.VERSIONS)
        if d.get("store_format") != STORE_FORMAT:
            raise InvalidHeader(f"account_keys: store_format {d.get('store_format')!r}")
        backup = d.get("backup")
        keys = cls(b64d(d.get("identity_seed"), length=32, field="identity_seed"),
                   b64d(d.get("storage_key"), length=32, field="storage_key"),
                   b64d(d.get("login_seed"), length=32, field="login_seed"),
                   None if backup is None else BackupKey.from_dict(backup))
        if len({keys.identity_seed, keys.storage_key, keys.login_seed}) != 3:
            raise InvalidKey("account_keys: keys must be independent")
        return keys


@dataclass(frozen=True)
class LegacyKeys:
    """Store format 1: every key derived from the identity seed (read-only, for migration)."""

    identity_seed: bytes
    backup_secret: bytes | None = None
    backup_version: str | None = None

    def store_key(self, purpose: str) -> bytes:
        """``derive_local_storage_key(S, purpose)``: ``"index"`` or ``"record:<ns>"``."""
        return derive_local_storage_key(self.identity_seed, purpose)

    @property
    def login_seed(self) -> bytes:
        return derive_local_storage_key(self.identity_seed, "login key")

    @property
    def history_key(self) -> bytes:
        return derive_local_storage_key(self.identity_seed, "history")


def migrate_legacy(legacy: LegacyKeys, *, keep_backup: bool = False) -> AccountKeys:
    """Format 1 -> 2: same identity, fresh independent storage and login keys.

    The legacy backup secret is dropped; ``keep_backup`` starts a new backup key
    (version 1 of the new scheme), which the client must upload to a new
    server-side backup version before deleting the old one.
    """
    keys = AccountKeys(legacy.identity_seed, P.random_bytes(32), P.random_bytes(32))
    return keys.enable_backup() if keep_backup else keys


def seal_account_keys(keys: AccountKeys, password: str | bytes, *,
                      params: KdfParams = DEFAULT_KDF, allow_weak: bool = False) -> bytes:
    return encrypt_with_password(dumps(keys.to_dict()), password, params=params,
                                 allow_weak=allow_weak)


def open_sealed_keys(blob: bytes, password: str | bytes, *,
                     allow_weak: bool = False) -> AccountKeys | LegacyKeys:
    """Open a password envelope of either format.

    Format 1 (``{"type": "identity_key", ...}``, :func:`seal_identity`) gives
    :class:`LegacyKeys` -- run :func:`migrate_legacy`; format 2 gives
    :class:`AccountKeys`.
    """
    d = loads(decrypt_with_password(blob, password, allow_weak=allow_weak))
    if d.get("type") == IdentityKeyPair.TYPE:
        return LegacyKeys(IdentityKeyPair.from_dict(d).seed)
    return AccountKeys.from_dict(d)


# --------------------------------------------------------------------------- recovery key


def _crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), bits MSB first."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def encode_recovery_key(key: bytes) -> str:
    """The backup key as 14 groups of 4 characters (Crockford base32)."""
    if len(key) != 32:
        raise InvalidKey("recovery key must be 32 bytes")
    data = RECOVERY_PREFIX + key
    data += _crc16(data).to_bytes(2, "big")
    text = base64.b32encode(data).decode("ascii")  # 35 bytes: 56 characters, no padding
    text = text.translate(str.maketrans(_STD32, _B32))
    return " ".join(text[i:i + 4] for i in range(0, len(text), 4))


def decode_recovery_key(text: str) -> bytes:
    """Inverse of :func:`encode_recovery_key`; case, spaces, dashes and the
    usual confusions (O→0, I/L→1) are forgiven; a wrong character is not."""
    cleaned = "".join(c for c in text.upper() if c not in " -\t\n")
    cleaned = cleaned.translate(str.maketrans("OIL", "011"))
    if len(cleaned) != 56 or any(c not in _B32 for c in cleaned):
        raise InvalidKey("recovery key: expected 56 characters of base32")
    data = base64.b32decode(cleaned.translate(str.maketrans(_B32, _STD32)))
    if data[:1] != RECOVERY_PREFIX or _crc16(data[:33]).to_bytes(2, "big") != data[33:]:
        raise InvalidKey("recovery key: check failed (a character is wrong)")
    return data[1:33]


__all__ = [
    "STORE_FORMAT",
    "STORE_FORMAT_LEGACY",
    "AccountKeys",
    "BackupKey",
    "LegacyKeys",
    "decode_recovery_key",
    "encode_recovery_key",
    "migrate_legacy",
    "open_sealed_keys",
    "seal_account_keys",
]

"""Key envelopes at rest.

Password envelope (private keys, e.g. the identity seed)
--------------------------------------------------------
::

    magic  b"PRLY" | version 0x01 | kdf_id (1) | kdf params | salt (16) | nonce (12)
    | AES-256-GCM(ciphertext || tag)          aad = every byte before the ciphertext

``kdf_id`` 1 = PBKDF2-HMAC-SHA256, params = iterations (uint32 BE);
``kdf_id`` 2 = scrypt, params = log2(N), r, p (one byte each).
The default is PBKDF2 with 600,000 iterations (OWASP 2023; audit M3).

**Raising parameters later.**  The parameters live in the (authenticated)
header, so old blobs keep opening.  To raise them: change
:data:`DEFAULT_KDF` (and the floors, if old blobs are to be refused), and in
the client, after a successful :func:`decrypt_with_password`, call
:func:`needs_upgrade` and re-encrypt with the new defaults if it returns
True.  A new KDF gets a new ``kdf_id``; a new layout gets a new version byte.
Decoding refuses parameters under the floor (:class:`WeakParameters`) unless
``allow_weak=True`` (for tests), and above a ceiling (denial of service).

Local-storage key (sessions, sender keys, message caches)
---------------------------------------------------------
:func:`derive_local_storage_key` derives a 32-byte key per *purpose* from the
identity seed with HKDF-SHA256; :func:`encrypt_local` /
:func:`decrypt_local` seal records as
``b"PRLL" | 0x01 | nonce (12) | AES-256-GCM`` with ``aad = header || context``
(pass e.g. the record's id as ``context`` so records cannot be swapped).
Nonces are random: fine for well under 2^32 records per key.
"""

from __future__ import annotations

import struct
import unicodedata
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from common.crypto import primitives as P
from common.crypto.errors import (
    DecryptionFailed,
    InvalidHeader,
    UnsupportedVersion,
    WeakParameters,
    WrongPassword,
)
from common.crypto.keys import IdentityKeyPair
from common.crypto.serialization import dumps, loads

MAGIC = b"PRLY"
VERSION = 1
KDF_PBKDF2_SHA256 = 1
KDF_SCRYPT = 2
SALT_LEN = 16

MIN_PBKDF2_ITERATIONS = 600_000
MAX_PBKDF2_ITERATIONS = 20_000_000
MIN_SCRYPT_LOG2_N, MAX_SCRYPT_LOG2_N = 17, 20
MAX_SCRYPT_MEMORY = 1 << 30


@dataclass(frozen=True)
class KdfParams:
    """Password KDF choice and cost, as stored in the envelope header."""

    kdf_id: int = KDF_PBKDF2_SHA256
    iterations: int = 600_000  # PBKDF2
    log2_n: int = 17  # scrypt
    r: int = 8
    p: int = 1

    @classmethod
    def pbkdf2(cls, iterations: int = 600_000) -> KdfParams:
        return cls(KDF_PBKDF2_SHA256, iterations=iterations)

    @classmethod
    def scrypt(cls, log2_n: int = 17, r: int = 8, p: int = 1) -> KdfParams:
        return cls(KDF_SCRYPT, log2_n=log2_n, r=r, p=p)

    def encode(self) -> bytes:
        if self.kdf_id == KDF_PBKDF2_SHA256:
            return struct.pack(">BI", self.kdf_id, self.iterations)
        if self.kdf_id == KDF_SCRYPT:
            return struct.pack(">BBBB", self.kdf_id, self.log2_n, self.r, self.p)
        raise UnsupportedVersion(f"unknown KDF id {self.kdf_id}")

    @classmethod
    def decode(cls, data: bytes) -> tuple[KdfParams, int]:
        """Parse params at the start of ``data``; return them and their length."""
        if not data:
            raise InvalidHeader("envelope truncated")
        if data[0] == KDF_PBKDF2_SHA256 and len(data) >= 5:
            return cls.pbkdf2(struct.unpack(">I", data[1:5])[0]), 5
        if data[0] == KDF_SCRYPT and len(data) >= 4:
            return cls.scrypt(data[1], data[2], data[3]), 4
        raise UnsupportedVersion(f"unknown KDF id {data[0]}")

    def check(self, *, allow_weak: bool = False) -> None:
        if self.kdf_id == KDF_PBKDF2_SHA256:
            if self.iterations > MAX_PBKDF2_ITERATIONS or self.iterations < 1:
                raise WeakParameters("PBKDF2 iteration count out of range")
            if self.iterations < MIN_PBKDF2_ITERATIONS and not allow_weak:
                raise WeakParameters(f"PBKDF2 with {self.iterations} < {MIN_PBKDF2_ITERATIONS}")
        elif self.kdf_id == KDF_SCRYPT:
            ok = 1 <= self.log2_n <= MAX_SCRYPT_LOG2_N and 1 <= self.r <= 32 and 1 <= self.p <= 16
            if not ok or (128 * self.r << self.log2_n) > MAX_SCRYPT_MEMORY:
                raise WeakParameters("scrypt parameters out of range")
            if (self.log2_n < MIN_SCRYPT_LOG2_N or self.r < 8) and not allow_weak:
                raise WeakParameters("scrypt parameters below the floor")
        else:
            raise UnsupportedVersion(f"unknown KDF id {self.kdf_id}")

    def derive(self, password: bytes, salt: bytes) -> bytes:
        if self.kdf_id == KDF_PBKDF2_SHA256:
            return PBKDF2HMAC(hashes.SHA256(), 32, salt, self.iterations).derive(password)
        return Scrypt(salt, 32, 1 << self.log2_n, self.r, self.p).derive(password)


DEFAULT_KDF = KdfParams.pbkdf2(MIN_PBKDF2_ITERATIONS)


def _password_bytes(password: str | bytes) -> bytes:
    """Passwords are NFKC-normalised UTF-8 (so the same typed password works
    across keyboards and platforms)."""
    if isinstance(password, bytes):
        return password
    return unicodedata.normalize("NFKC", password).encode("utf-8")


def encrypt_with_password(
    plaintext: bytes,
    password: str | bytes,
    *,
    params: KdfParams = DEFAULT_KDF,
    allow_weak: bool = False,
) -> bytes:
    """Seal ``plaintext`` under a password (see the module docstring)."""
    params.check(allow_weak=allow_weak)
    salt = P.random_bytes(SALT_LEN)
    nonce = P.random_bytes(P.NONCE_LEN)
    header = MAGIC + bytes([VERSION]) + params.encode() + salt + nonce
    key = params.derive(_password_bytes(password), salt)
    return header + P.aes_gcm_encrypt(key, nonce, plaintext, header)


def _parse(blob: bytes) -> tuple[KdfParams, bytes, bytes, bytes, bytes]:
    if len(blob) < 5 or blob[:4] != MAGIC:
        raise InvalidHeader("not a Parley password envelope")
    if blob[4] != VERSION:
        raise UnsupportedVersion(f"password envelope version {blob[4]}")
    params, n = KdfParams.decode(blob[5:])
    start = 5 + n
    end = start + SALT_LEN + P.NONCE_LEN
    if len(blob) < end + P.TAG_LEN:
        raise InvalidHeader("envelope truncated")
    salt, nonce = blob[start : start + SALT_LEN], blob[start + SALT_LEN : end]
    return params, salt, nonce, blob[:end], blob[end:]


def envelope_params(blob: bytes) -> KdfParams:
    """The KDF parameters of an envelope (no password needed)."""
    return _parse(blob)[0]


def needs_upgrade(blob: bytes, current: KdfParams = DEFAULT_KDF) -> bool:
    """True when ``blob`` was sealed with other parameters than ``current``."""
    return envelope_params(blob) != current


def decrypt_with_password(blob: bytes, password: str | bytes, *, allow_weak: bool = False) -> bytes:
    """Open a password envelope; raises :class:`WrongPassword` on failure."""
    params, salt, nonce, header, ciphertext = _parse(blob)
    params.check(allow_weak=allow_weak)
    key = params.derive(_password_bytes(password), salt)
    try:
        return P.aes_gcm_decrypt(key, nonce, ciphertext, header)
    except DecryptionFailed as exc:
        raise WrongPassword("wrong password or corrupted envelope") from exc


def seal_identity(
    identity: IdentityKeyPair, password: str | bytes, *, params: KdfParams = DEFAULT_KDF,
    allow_weak: bool = False,
) -> bytes:
    """Password envelope around the serialised identity key."""
    return encrypt_with_password(
        dumps(identity.to_dict()), password, params=params, allow_weak=allow_weak
    )


def open_identity(blob: bytes, password: str | bytes, *, allow_weak: bool = False) -> IdentityKeyPair:
    return IdentityKeyPair.from_dict(
        loads(decrypt_with_password(blob, password, allow_weak=allow_weak))
    )


# --------------------------------------------------------------------------- local storage

LOCAL_MAGIC = b"PRLL"
LOCAL_VERSION = 1
LOCAL_SALT = b"Parley local storage"
PURPOSE_SESSIONS = "sessions"
PURPOSE_SENDER_KEYS = "sender_keys"
PURPOSE_MESSAGE_CACHE = "message_cache"


def derive_local_storage_key(identity: IdentityKeyPair | bytes, purpose: str) -> bytes:
    """HKDF-SHA256(identity seed, salt=b"Parley local storage",
    info=b"Parley local storage v1:" + purpose) → 32 bytes."""
    seed = identity.seed if isinstance(identity, IdentityKeyPair) else identity
    if len(seed) != 32:
        raise InvalidHeader("identity seed must be 32 bytes")
    info = b"Parley local storage v1:" + purpose.encode("utf-8")
    return P.hkdf_sha256(seed, salt=LOCAL_SALT, info=info, length=32)


def encrypt_local(key: bytes, plaintext: bytes, *, context: bytes = b"") -> bytes:
    nonce = P.random_bytes(P.NONCE_LEN)
    header = LOCAL_MAGIC + bytes([LOCAL_VERSION]) + nonce
    return header + P.aes_gcm_encrypt(key, nonce, plaintext, header + context)


def decrypt_local(key: bytes, blob: bytes, *, context: bytes = b"") -> bytes:
    """Raises :class:`InvalidHeader`, :class:`UnsupportedVersion` or
    :class:`DecryptionFailed`."""
    if len(blob) < 5 or blob[:4] != LOCAL_MAGIC:
        raise InvalidHeader("not a Parley local-storage record")
    if blob[4] != LOCAL_VERSION:
        raise UnsupportedVersion(f"local-storage version {blob[4]}")
    if len(blob) < 5 + P.NONCE_LEN + P.TAG_LEN:
        raise InvalidHeader("local-storage record truncated")
    header, ciphertext = blob[: 5 + P.NONCE_LEN], blob[5 + P.NONCE_LEN :]
    return P.aes_gcm_decrypt(key, header[5:], ciphertext, header + context)

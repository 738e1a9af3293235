"""Signed KEM pre-keys for PQXDH (Signal, "The PQXDH Key Agreement Protocol", rev. 3, §2.5, §3.2).

Bob publishes, besides his X3DH keys, a signed **last-resort** KEM pre-key
``PQSPK_B`` (kept until rotated, like the signed pre-key) and a pool of signed
**one-time** KEM pre-keys ``PQOPK_B`` (each handed out at most once by the
server).  :class:`KemPreKey` holds one; its public form is signed JSON
``{"usage": "kem_prekey" | "kem_last_resort_prekey", "key_id", "kem":
"ml-kem-1024", "key": b64(EncodeKEM)}`` signed by ``IK_B`` (Matrix signing
rules), i.e. ``Sig(IK_B, EncodeKEM(PQPK_B))`` of §3.2 in Matrix form.

``EncodeKEM(pk)`` (§2.3) = one type byte :data:`KEM_TYPE_MLKEM1024` || the
1568-byte FIPS 203 encoding, so a key of one KEM can never be read as another's.
On the homeserver they are uploaded under :data:`KEM_KEY_ALGORITHM`
(:func:`kem_upload_entries`): one-time keys in ``one_time_keys``, the
last-resort key in ``fallback_keys``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.mlkem import (
    MLKEM1024PrivateKey,
    MLKEM1024PublicKey,
)

from common.crypto.errors import InvalidHeader, InvalidKey
from common.crypto.keys import IdentityKeyPair, IdentityPublicKey
from common.crypto.serialization import JsonDict, b64d, b64e, check_version, get_int

# The key-upload algorithm of signed KEM pre-keys (one-time and last-resort/fallback).
KEM_KEY_ALGORITHM = "im.parley.signed_mlkem1024"
KEM_NAME = "ml-kem-1024"
KEM_TYPE_MLKEM1024 = 0x0A
KEM_PUBLIC_LEN = 1568
KEM_CIPHERTEXT_LEN = 1568
KEM_SEED_LEN = 64
KEM_PREKEY_USAGE = "kem_prekey"
KEM_LAST_RESORT_USAGE = "kem_last_resort_prekey"


def encode_kem(public: bytes) -> bytes:
    """``EncodeKEM``: type byte || FIPS 203 encoding of an ML-KEM-1024 key."""
    if len(public) != KEM_PUBLIC_LEN:
        raise InvalidKey(f"ML-KEM-1024 public key must be {KEM_PUBLIC_LEN} bytes")
    return bytes([KEM_TYPE_MLKEM1024]) + public


def decode_kem(data: bytes) -> bytes:
    """``DecodeKEM``: the raw key of an encoded ML-KEM-1024 public key."""
    if len(data) != 1 + KEM_PUBLIC_LEN or data[0] != KEM_TYPE_MLKEM1024:
        raise InvalidKey("not an encoded ML-KEM-1024 public key")
    MLKEM1024PublicKey.from_public_bytes(data[1:])  # validates the encoding
    return data[1:]


@dataclass
class KemPreKey:
    """A KEM pre-key (``PQSPK`` when ``last_resort``, else a ``PQOPK``)."""

    key_id: int
    private: MLKEM1024PrivateKey
    last_resort: bool = False
    created_ms: int = 0

    TYPE = "kem_prekey"
    VERSIONS = (1,)

    @classmethod
    def generate(cls, key_id: int, *, last_resort: bool = False, created_ms: int = 0) -> KemPreKey:
        return cls(key_id, MLKEM1024PrivateKey.generate(), last_resort, created_ms)

    @classmethod
    def from_seed(cls, key_id: int, seed: bytes, *, last_resort: bool = False,
                  created_ms: int = 0) -> KemPreKey:
        if len(seed) != KEM_SEED_LEN:
            raise InvalidKey("ML-KEM seed must be 64 bytes")
        return cls(key_id, MLKEM1024PrivateKey.from_seed_bytes(seed), last_resort, created_ms)

    @property
    def usage(self) -> str:
        return KEM_LAST_RESORT_USAGE if self.last_resort else KEM_PREKEY_USAGE

    @property
    def public_bytes(self) -> bytes:
        return self.private.public_key().public_bytes_raw()

    def decapsulate(self, ciphertext: bytes) -> bytes:
        if len(ciphertext) != KEM_CIPHERTEXT_LEN:
            raise InvalidHeader(f"ML-KEM-1024 ciphertext must be {KEM_CIPHERTEXT_LEN} bytes")
        return self.private.decapsulate(ciphertext)

    def signed_public(self, identity: IdentityKeyPair, user_id: str, device_id: str) -> JsonDict:
        obj: JsonDict = {"usage": self.usage, "key_id": self.key_id, "kem": KEM_NAME,
                         "key": b64e(encode_kem(self.public_bytes))}
        return identity.sign_json(obj, user_id, device_id)

    def to_dict(self) -> JsonDict:
        return {"type": self.TYPE, "v": 1, "key_id": self.key_id,
                "seed": b64e(self.private.private_bytes_raw()),
                "last_resort": self.last_resort, "created_ms": self.created_ms}

    @classmethod
    def from_dict(cls, d: Any) -> KemPreKey:
        check_version(d, cls.TYPE, cls.VERSIONS)
        last_resort = d.get("last_resort")
        if not isinstance(last_resort, bool):
            raise InvalidHeader("kem_prekey: last_resort must be a boolean")
        return cls.from_seed(get_int(d, "key_id"),
                             b64d(d.get("seed"), length=KEM_SEED_LEN, field="seed"),
                             last_resort=last_resort,
                             created_ms=get_int(d, "created_ms", hi=2**53 - 1))


def verify_kem_prekey_json(obj: Any, identity: IdentityPublicKey, user_id: str,
                           device_id: str) -> tuple[int, bytes, bool]:
    """Verify a published KEM pre-key; return ``(key_id, public, last_resort)``.

    The signature is checked before the key is used for anything (§3.3).
    """
    if not isinstance(obj, dict):
        raise InvalidHeader("kem pre-key: expected an object")
    usage = obj.get("usage")
    if usage not in (KEM_PREKEY_USAGE, KEM_LAST_RESORT_USAGE):
        raise InvalidHeader(f"kem pre-key: wrong usage {usage!r}")
    if obj.get("kem") != KEM_NAME:
        raise InvalidHeader(f"kem pre-key: unsupported KEM {obj.get('kem')!r}")
    identity.verify_json(obj, user_id, device_id)
    key_id = get_int(obj, "key_id")
    public = decode_kem(b64d(obj.get("key"), length=1 + KEM_PUBLIC_LEN, field="key"))
    return key_id, public, usage == KEM_LAST_RESORT_USAGE


def kem_upload_entries(keys: list[KemPreKey], identity: IdentityKeyPair, user_id: str,
                       device_id: str) -> JsonDict:
    """``{"im.parley.signed_mlkem1024:<id>": signed}`` for ``one_time_keys`` (one-time
    keys) or ``fallback_keys`` (the last-resort key) of ``/keys/upload``."""
    return {f"{KEM_KEY_ALGORITHM}:{k.key_id}": k.signed_public(identity, user_id, device_id)
            for k in keys}


__all__ = [
    "KEM_KEY_ALGORITHM",
    "KEM_NAME",
    "KemPreKey",
    "decode_kem",
    "encode_kem",
    "kem_upload_entries",
    "verify_kem_prekey_json",
]

"""Cryptographic primitives, all from ``cryptography``.

* X25519 Diffie-Hellman with an all-zero-output check (X3DH §2.2, DR §5.2
  ``DH``), key generation and (de)serialisation helpers.
* Ed25519 → X25519 conversion.  Parley identity keys are Ed25519 (they sign
  pre-keys and JSON, as Matrix device keys do) and take part in X3DH through
  their birationally equivalent Montgomery form, which is what libsodium's
  ``crypto_sign_ed25519_pk_to_curve25519`` / ``..._sk_to_curve25519`` do:

  - public key: ``u = (1 + y) / (1 - y) mod p`` where ``y`` is the Edwards
    y-coordinate encoded in the Ed25519 public key (RFC 7748 §4.1);
  - private key: the clamped first half of ``SHA-512(seed)`` — exactly the
    scalar Ed25519 itself uses (RFC 8032 §5.1.5), so both forms describe the
    same secret scalar and DH agrees in both directions.

  This is the conversion approach, not Signal's XEdDSA (XEdDSA §2.3 signs
  with a Montgomery key); it is chosen because Matrix signing needs genuine
  Ed25519 keys and signatures, and the conversion is the standard one.
* HKDF-SHA256 (RFC 5869) and HMAC-SHA256, the KDFs recommended by the Double
  Ratchet spec §5.2.
* AES-256-GCM AEAD (96-bit nonces); authentication failures raise
  :class:`~common.crypto.errors.DecryptionFailed`.
"""

from __future__ import annotations

import hashlib
import hmac
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from common.crypto.errors import DecryptionFailed, InvalidKey

KEY_LEN = 32
NONCE_LEN = 12
TAG_LEN = 16

_P = 2**255 - 19
_D = (-121665 * pow(121666, -1, _P)) % _P

_SHA256 = hashes.SHA256()
_RAW = serialization.Encoding.Raw
_RAW_PUB = serialization.PublicFormat.Raw
_RAW_PRIV = serialization.PrivateFormat.Raw
_NO_ENC = serialization.NoEncryption()


# --------------------------------------------------------------------------- KDFs


def hkdf_sha256(ikm: bytes, *, salt: bytes | None, info: bytes, length: int) -> bytes:
    """HKDF-SHA256 (RFC 5869); ``salt=None`` means HashLen zero bytes."""
    return HKDF(algorithm=_SHA256, length=length, salt=salt, info=info).derive(ikm)


def hmac_sha256(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def constant_time_equal(a: bytes, b: bytes) -> bool:
    return hmac.compare_digest(a, b)


def random_bytes(n: int) -> bytes:
    return os.urandom(n)


# --------------------------------------------------------------------------- AEAD


def aes_gcm_encrypt(key: bytes, nonce: bytes, plaintext: bytes, aad: bytes = b"") -> bytes:
    """AES-256-GCM; returns ciphertext || 16-byte tag."""
    if len(key) != KEY_LEN or len(nonce) != NONCE_LEN:
        raise InvalidKey("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    return AESGCM(key).encrypt(nonce, plaintext, aad)


def aes_gcm_decrypt(key: bytes, nonce: bytes, ciphertext: bytes, aad: bytes = b"") -> bytes:
    """Inverse of :func:`aes_gcm_encrypt`; raises :class:`DecryptionFailed`."""
    if len(key) != KEY_LEN or len(nonce) != NONCE_LEN:
        raise InvalidKey("AES-256-GCM needs a 32-byte key and a 12-byte nonce")
    if len(ciphertext) < TAG_LEN:
        raise DecryptionFailed("ciphertext shorter than the GCM tag")
    try:
        return AESGCM(key).decrypt(nonce, ciphertext, aad)
    except InvalidTag as exc:
        raise DecryptionFailed("AES-GCM authentication failed") from exc


# --------------------------------------------------------------------------- X25519


def generate_x25519() -> X25519PrivateKey:
    return X25519PrivateKey.generate()


def x25519_private_bytes(key: X25519PrivateKey) -> bytes:
    return key.private_bytes(_RAW, _RAW_PRIV, _NO_ENC)


def x25519_public_bytes(key: X25519PrivateKey | X25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, X25519PrivateKey) else key
    return pub.public_bytes(_RAW, _RAW_PUB)


def load_x25519_private(data: bytes) -> X25519PrivateKey:
    if len(data) != KEY_LEN:
        raise InvalidKey("X25519 private key must be 32 bytes")
    return X25519PrivateKey.from_private_bytes(data)


def load_x25519_public(data: bytes) -> X25519PublicKey:
    if len(data) != KEY_LEN:
        raise InvalidKey("X25519 public key must be 32 bytes")
    return X25519PublicKey.from_public_bytes(data)


def x25519(private: X25519PrivateKey, public: X25519PublicKey | bytes) -> bytes:
    """DH(priv, pub) (X3DH §2.2).  Rejects low-order peers (all-zero output)."""
    peer = load_x25519_public(public) if isinstance(public, bytes) else public
    try:
        shared = private.exchange(peer)
    except ValueError as exc:  # OpenSSL refuses an all-zero result
        raise InvalidKey("X25519 with a low-order public key") from exc
    if not any(shared):
        raise InvalidKey("X25519 with a low-order public key")
    return shared


# --------------------------------------------------------------------------- Ed25519


def generate_ed25519() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def ed25519_seed(key: Ed25519PrivateKey) -> bytes:
    return key.private_bytes(_RAW, _RAW_PRIV, _NO_ENC)


def ed25519_public_bytes(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return pub.public_bytes(_RAW, _RAW_PUB)


def load_ed25519_private(seed: bytes) -> Ed25519PrivateKey:
    if len(seed) != KEY_LEN:
        raise InvalidKey("Ed25519 seed must be 32 bytes")
    return Ed25519PrivateKey.from_private_bytes(seed)


def load_ed25519_public(data: bytes) -> Ed25519PublicKey:
    if len(data) != KEY_LEN:
        raise InvalidKey("Ed25519 public key must be 32 bytes")
    ed25519_public_to_x25519(data)  # validates the point encoding
    return Ed25519PublicKey.from_public_bytes(data)


def ed25519_public_to_x25519(ed_public: bytes) -> bytes:
    """Montgomery ``u`` of an Ed25519 public key: ``u = (1+y)/(1-y) mod p``.

    Rejects encodings that are not points of edwards25519 (non-canonical ``y``,
    no matching ``x``) and ``y = 1`` (the neutral element, ``u`` undefined).
    """
    if len(ed_public) != KEY_LEN:
        raise InvalidKey("Ed25519 public key must be 32 bytes")
    y = int.from_bytes(ed_public, "little") & ((1 << 255) - 1)
    if y >= _P:
        raise InvalidKey("non-canonical Ed25519 public key")
    if y == 1:
        raise InvalidKey("Ed25519 public key is the neutral element")
    y2 = y * y % _P
    x2 = (y2 - 1) * pow(_D * y2 + 1, -1, _P) % _P
    if x2 != 0 and pow(x2, (_P - 1) // 2, _P) != 1:
        raise InvalidKey("Ed25519 public key is not on the curve")
    u = (1 + y) * pow(1 - y, -1, _P) % _P
    return u.to_bytes(KEY_LEN, "little")


def ed25519_seed_to_x25519(seed: bytes) -> bytes:
    """X25519 private scalar of an Ed25519 seed: clamped ``SHA-512(seed)[:32]``."""
    if len(seed) != KEY_LEN:
        raise InvalidKey("Ed25519 seed must be 32 bytes")
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return bytes(h)

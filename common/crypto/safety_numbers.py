"""Safety numbers: a 60-digit fingerprint of two identity keys.

Signal's ``NumericFingerprintGenerator`` construction, with the Ed25519
identity key (32 bytes) in place of Signal's serialised Curve25519 key and
the Matrix user id as the stable identifier:

    h = u16be(FINGERPRINT_VERSION) || key || identifier
    repeat ITERATIONS (5200) times:  h = SHA-512(h || key)
    half = the first 30 bytes of h, as six 5-byte big-endian integers, each
           rendered as ``n mod 100000`` in 5 zero-padded digits (30 digits)

The safety number is the two 30-digit halves in ascending (string) order,
so both users compute the same 60 digits; they compare them (or scan
:meth:`SafetyNumber.scannable`) out of band.  Any key change changes it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from common.crypto.keys import IdentityPublicKey

FINGERPRINT_VERSION = 0
ITERATIONS = 5200


def _fingerprint_half(identifier: str, key: bytes) -> str:
    h = FINGERPRINT_VERSION.to_bytes(2, "big") + key + identifier.encode("utf-8")
    for _ in range(ITERATIONS):
        h = hashlib.sha512(h + key).digest()
    return "".join(
        f"{int.from_bytes(h[i : i + 5], 'big') % 100000:05d}" for i in range(0, 30, 5)
    )


def _raw(key: IdentityPublicKey | bytes) -> bytes:
    return key.ed25519 if isinstance(key, IdentityPublicKey) else IdentityPublicKey(key).ed25519


@dataclass(frozen=True)
class SafetyNumber:
    """60 decimal digits; equal on both sides iff both see the same keys."""

    digits: str

    def formatted(self) -> str:
        """Twelve groups of five digits, as Signal shows them."""
        return " ".join(self.digits[i : i + 5] for i in range(0, 60, 5))

    def scannable(self) -> bytes:
        """Compact form for a QR code (the 60 digits, ASCII)."""
        return self.digits.encode("ascii")

    def __str__(self) -> str:
        return self.formatted()


def safety_number(
    local_user_id: str,
    local_key: IdentityPublicKey | bytes,
    remote_user_id: str,
    remote_key: IdentityPublicKey | bytes,
) -> SafetyNumber:
    """The safety number of two (user id, identity key) pairs; symmetric."""
    a = _fingerprint_half(local_user_id, _raw(local_key))
    b = _fingerprint_half(remote_user_id, _raw(remote_key))
    return SafetyNumber(a + b if a <= b else b + a)

"""Short authentication strings for device pairing (SAS, as in Matrix's ``m.sas.v1``).

Pairing relays both devices' ephemeral X25519 keys through the homeserver, so
a malicious server could hand each device its own key and sit in the middle.
Both devices therefore derive a short code from the Diffie-Hellman secret *and*
the whole pairing transcript, show it, and the user confirms that the two
screens match before anything secret is sent.  A server in the middle holds
two different DH secrets (one per device), so the two screens show different
codes, except with probability about 2^-39 (decimal) or 2^-42 (emoji).

Transcript (:meth:`PairingTranscript.encode`): the label
``b"Parley pairing SAS v1"`` and, each as a 4-byte big-endian length and its
bytes, the user id, the pairing code, the new device's id (or the display name
it announced before it has an id), the approving device's id, the new device's
ephemeral public key and the approving device's ephemeral public key.

Derivation (HKDF-SHA256, RFC 5869)::

    shared = X25519(own ephemeral, peer ephemeral)            (low-order peers refused)
    salt   = SHA-256(transcript)
    sas    = HKDF(shared, salt, info = "Parley pairing SAS v1|sas", 6 bytes)
    key    = HKDF(shared, salt, info = "Parley pairing SAS v1|archive key", 32 bytes)

``sas`` is shown as three 4-digit numbers (13 bits each + 1000, Matrix's
decimal method) or seven emoji indices (6 bits each, into Matrix's 64-emoji
table, which the view renders).  ``key`` encrypts what the approving device
sends (the history archive, the shared secrets); :class:`PairingAgreement`
only releases it after :meth:`PairingAgreement.confirm` -- a mismatch raises
:class:`SasMismatch` and the agreement is dead for good.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass, field
from typing import Literal

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.crypto import primitives as P
from common.crypto.errors import CryptoError, InvalidKey

SAS_LABEL = b"Parley pairing SAS v1"
Role = Literal["new", "approving"]


class SasMismatch(CryptoError):
    """The user said (or typed) that the two screens' codes differ."""


class SasNotConfirmed(CryptoError):
    """The pairing key was asked for before the code was confirmed."""


@dataclass(frozen=True)
class PairingTranscript:
    """Everything both devices must agree on; each side builds it from what it saw."""

    user_id: str
    code: str
    new_device: str
    approving_device: str
    new_device_key: bytes
    approving_device_key: bytes

    def encode(self) -> bytes:
        parts = [self.user_id.encode(), self.code.encode(), self.new_device.encode(),
                 self.approving_device.encode(), self.new_device_key, self.approving_device_key]
        for key in (self.new_device_key, self.approving_device_key):
            if len(key) != P.KEY_LEN:
                raise InvalidKey("pairing keys are 32-byte X25519 public keys")
        return SAS_LABEL + b"".join(struct.pack(">I", len(p)) + p for p in parts)


def sas_decimal(sas: bytes) -> tuple[int, int, int]:
    """Three numbers in 1000..9191 from the first 5 bytes (Matrix ``decimal``)."""
    bits = int.from_bytes(sas[:5], "big") >> 1  # 39 bits
    return ((bits >> 26) + 1000, ((bits >> 13) & 0x1FFF) + 1000, (bits & 0x1FFF) + 1000)


def sas_emoji_indices(sas: bytes) -> tuple[int, ...]:
    """Seven indices in 0..63 from the first 42 bits (Matrix ``emoji``)."""
    bits = int.from_bytes(sas[:6], "big") >> 6
    return tuple((bits >> (6 * (6 - i))) & 0x3F for i in range(7))


@dataclass
class PairingAgreement:
    """One device's side of a pairing: the code to show and, once confirmed, the key."""

    transcript: PairingTranscript
    sas_bytes: bytes
    _key: bytes = field(repr=False)
    _state: Literal["pending", "confirmed", "refused"] = "pending"

    @classmethod
    def derive(cls, private: X25519PrivateKey, transcript: PairingTranscript,
               role: Role) -> PairingAgreement:
        """``private`` is this device's ephemeral key; it must be the transcript's
        key for ``role`` (so a device cannot be talked into a transcript that
        names another key as its own)."""
        own = P.x25519_public_bytes(private)
        mine, peer = ((transcript.new_device_key, transcript.approving_device_key)
                      if role == "new" else
                      (transcript.approving_device_key, transcript.new_device_key))
        if not P.constant_time_equal(own, mine):
            raise InvalidKey("the transcript names another key for this device")
        shared = P.x25519(private, peer)
        salt = hashlib.sha256(transcript.encode()).digest()
        sas = P.hkdf_sha256(shared, salt=salt, info=SAS_LABEL + b"|sas", length=6)
        key = P.hkdf_sha256(shared, salt=salt, info=SAS_LABEL + b"|archive key", length=32)
        return cls(transcript, sas, key)

    @property
    def decimal(self) -> tuple[int, int, int]:
        return sas_decimal(self.sas_bytes)

    @property
    def decimal_text(self) -> str:
        return "-".join(str(n) for n in self.decimal)

    @property
    def emoji_indices(self) -> tuple[int, ...]:
        return sas_emoji_indices(self.sas_bytes)

    def confirm(self, matches: bool) -> None:
        """The user's answer to "do both screens show the same code?"."""
        if self._state == "refused" or not matches:
            self._state = "refused"
            raise SasMismatch("the pairing codes differ: pairing refused")
        self._state = "confirmed"

    def confirm_code(self, typed: str) -> None:
        """The user typed the other screen's decimal code (dashes/spaces ignored)."""
        digits = "".join(c for c in typed if c.isdigit())
        expected = "".join(str(n) for n in self.decimal)
        self.confirm(P.constant_time_equal(digits.encode(), expected.encode()))

    @property
    def key(self) -> bytes:
        """The 32-byte pairing key; only after a successful confirmation."""
        if self._state != "confirmed":
            raise SasNotConfirmed(f"pairing code not confirmed ({self._state})")
        return self._key


__all__ = [
    "PairingAgreement",
    "PairingTranscript",
    "SasMismatch",
    "SasNotConfirmed",
    "sas_decimal",
    "sas_emoji_indices",
]

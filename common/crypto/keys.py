"""Long-term and pre-keys (X3DH §2.5, §3.2).

* :class:`IdentityKeyPair` — a device's Ed25519 identity key ``IK``.  It signs
  pre-keys and JSON (Matrix signing rules via :mod:`common.canonical_json`)
  and takes part in X3DH through its X25519 form (see
  :mod:`common.crypto.primitives`).
* :class:`SignedPreKey` — X25519 ``SPK`` with an id; its public form is a
  signed JSON object ``{"usage": "signed_prekey", "key_id", "key",
  "signatures"}`` signed by ``IK`` under ``(user_id, "ed25519:" + device_id)``,
  which is ``Sig(IK, Encode(SPK))`` of X3DH §3.2 in Matrix's signing format so
  the homeserver can verify uploads with the same code.
* :class:`OneTimePreKey` — X25519 ``OPK``; also published signed (with
  ``"usage": "one_time_prekey"``), which X3DH does not require but costs
  nothing and stops a server from substituting its own one-time keys.

Rotation of signed pre-keys (every 7 days, previous one kept for a grace
period) is left to the client; :class:`SignedPreKey` records ``created_ms``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.canonical_json import sign_json, verify_signed_json
from common.crypto import primitives as P
from common.crypto.errors import InvalidHeader, InvalidSignature
from common.crypto.serialization import (
    JsonDict,
    b64d,
    b64e,
    check_version,
    get_int,
)

SIGNED_PREKEY_USAGE = "signed_prekey"
ONE_TIME_PREKEY_USAGE = "one_time_prekey"

# Algorithm names a Parley device advertises in its device keys.
X3DH_ALGORITHM = "im.parley.x3dh.v1"
SENDER_KEY_ALGORITHM = "im.parley.sender_key.v1"


@dataclass(frozen=True)
class IdentityPublicKey:
    """The public half of an identity key: 32 bytes of Ed25519."""

    ed25519: bytes
    _key: Ed25519PublicKey = field(init=False, repr=False, compare=False)
    _x25519: bytes = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # The conversion also validates the encoding (point on the curve).
        object.__setattr__(self, "_x25519", P.ed25519_public_to_x25519(self.ed25519))
        object.__setattr__(self, "_key", Ed25519PublicKey.from_public_bytes(self.ed25519))

    @property
    def x25519(self) -> bytes:
        """The Montgomery (X25519) form used for DH."""
        return self._x25519

    @property
    def key(self) -> Ed25519PublicKey:
        return self._key

    def to_b64(self) -> str:
        return b64e(self.ed25519)

    @classmethod
    def from_b64(cls, text: object) -> IdentityPublicKey:
        return cls(b64d(text, length=32, field="identity_key"))

    def verify(self, signature: bytes, data: bytes) -> None:
        """Raise :class:`InvalidSignature` unless ``signature`` is valid."""
        try:
            self._key.verify(signature, data)
        except _CryptoInvalidSignature as exc:
            raise InvalidSignature("Ed25519 signature did not verify") from exc

    def verify_json(self, obj: JsonDict, user_id: str, device_id: str) -> None:
        """Check a Matrix JSON signature by this key; raise on failure."""
        if not verify_signed_json(obj, user_id, device_id, self._key):
            raise InvalidSignature(f"bad JSON signature by {user_id}/{device_id}")


class IdentityKeyPair:
    """A device identity key pair (Ed25519, with its X25519 form for DH)."""

    TYPE = "identity_key"
    VERSIONS = (1,)

    def __init__(self, private: Ed25519PrivateKey) -> None:
        self._private = private
        self._seed = P.ed25519_seed(private)
        self.public = IdentityPublicKey(P.ed25519_public_bytes(private))
        self._dh = P.load_x25519_private(P.ed25519_seed_to_x25519(self._seed))

    @classmethod
    def generate(cls) -> IdentityKeyPair:
        return cls(P.generate_ed25519())

    @classmethod
    def from_seed(cls, seed: bytes) -> IdentityKeyPair:
        return cls(P.load_ed25519_private(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte Ed25519 seed: the secret to protect at rest."""
        return self._seed

    @property
    def signing_key(self) -> Ed25519PrivateKey:
        return self._private

    @property
    def dh_private(self) -> X25519PrivateKey:
        return self._dh

    def sign(self, data: bytes) -> bytes:
        return self._private.sign(data)

    def sign_json(self, obj: JsonDict, user_id: str, device_id: str) -> JsonDict:
        """Add a Matrix signature ``signatures[user_id]["ed25519:"+device_id]``."""
        return sign_json(obj, user_id, device_id, self._private)

    def device_keys(self, user_id: str, device_id: str) -> JsonDict:
        """Self-signed Matrix-style device keys object for upload."""
        obj: JsonDict = {
            "user_id": user_id,
            "device_id": device_id,
            "algorithms": [X3DH_ALGORITHM, SENDER_KEY_ALGORITHM],
            "keys": {
                f"ed25519:{device_id}": self.public.to_b64(),
                f"curve25519:{device_id}": b64e(self.public.x25519),
            },
        }
        return self.sign_json(obj, user_id, device_id)

    def to_dict(self) -> JsonDict:
        return {"type": self.TYPE, "v": 1, "seed": b64e(self._seed)}

    @classmethod
    def from_dict(cls, d: Any) -> IdentityKeyPair:
        check_version(d, cls.TYPE, cls.VERSIONS)
        return cls.from_seed(b64d(d.get("seed"), length=32, field="seed"))


def _signed_public(
    usage: str, key_id: int, public: bytes, identity: IdentityKeyPair, user_id: str, device_id: str
) -> JsonDict:
    obj: JsonDict = {"usage": usage, "key_id": key_id, "key": b64e(public)}
    return identity.sign_json(obj, user_id, device_id)


def verify_prekey_json(
    obj: Any, usage: str, identity: IdentityPublicKey, user_id: str, device_id: str
) -> tuple[int, bytes]:
    """Verify a published pre-key object; return ``(key_id, x25519_public)``.

    The signature is checked before the key is used for anything (X3DH §3.3).
    """
    if not isinstance(obj, dict):
        raise InvalidHeader(f"{usage}: expected an object")
    if obj.get("usage") != usage:
        raise InvalidHeader(f"{usage}: wrong usage {obj.get('usage')!r}")
    identity.verify_json(obj, user_id, device_id)
    key_id = get_int(obj, "key_id")
    key = b64d(obj.get("key"), length=32, field="key")
    return key_id, key


@dataclass
class _PreKey:
    key_id: int
    private: X25519PrivateKey

    @property
    def public_bytes(self) -> bytes:
        return P.x25519_public_bytes(self.private)


@dataclass
class SignedPreKey(_PreKey):
    """A signed pre-key ``SPK`` (X3DH §2.5)."""

    created_ms: int = 0

    TYPE = "signed_prekey"
    VERSIONS = (1,)

    @classmethod
    def generate(cls, key_id: int, created_ms: int = 0) -> SignedPreKey:
        return cls(key_id, P.generate_x25519(), created_ms)

    def signed_public(self, identity: IdentityKeyPair, user_id: str, device_id: str) -> JsonDict:
        return _signed_public(
            SIGNED_PREKEY_USAGE, self.key_id, self.public_bytes, identity, user_id, device_id
        )

    def to_dict(self) -> JsonDict:
        return {
            "type": self.TYPE,
            "v": 1,
            "key_id": self.key_id,
            "private": b64e(P.x25519_private_bytes(self.private)),
            "created_ms": self.created_ms,
        }

    @classmethod
    def from_dict(cls, d: Any) -> SignedPreKey:
        check_version(d, cls.TYPE, cls.VERSIONS)
        return cls(
            get_int(d, "key_id"),
            P.load_x25519_private(b64d(d.get("private"), length=32, field="private")),
            get_int(d, "created_ms", hi=2**53 - 1),
        )


@dataclass
class OneTimePreKey(_PreKey):
    """A one-time pre-key ``OPK`` (X3DH §2.5); delete it after first use."""

    TYPE = "one_time_prekey"
    VERSIONS = (1,)

    @classmethod
    def generate(cls, key_id: int) -> OneTimePreKey:
        return cls(key_id, P.generate_x25519())

    def signed_public(self, identity: IdentityKeyPair, user_id: str, device_id: str) -> JsonDict:
        return _signed_public(
            ONE_TIME_PREKEY_USAGE, self.key_id, self.public_bytes, identity, user_id, device_id
        )

    def to_dict(self) -> JsonDict:
        return {
            "type": self.TYPE,
            "v": 1,
            "key_id": self.key_id,
            "private": b64e(P.x25519_private_bytes(self.private)),
        }

    @classmethod
    def from_dict(cls, d: Any) -> OneTimePreKey:
        check_version(d, cls.TYPE, cls.VERSIONS)
        return cls(
            get_int(d, "key_id"),
            P.load_x25519_private(b64d(d.get("private"), length=32, field="private")),
        )


__all__ = [
    "IdentityKeyPair",
    "IdentityPublicKey",
    "OneTimePreKey",
    "SignedPreKey",
    "verify_prekey_json",
]

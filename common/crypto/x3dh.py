"""X3DH key agreement (Signal, "The X3DH Key Agreement Protocol", rev. 1).

Bob publishes a :class:`PreKeyBundle` (§3.2): identity key ``IK_B``, signed
pre-key ``SPK_B`` with its signature, and optionally one one-time pre-key
``OPK_B``.  Alice runs :func:`x3dh_initiate` (§3.3): she verifies the
signature *before anything else*, generates ``EK_A`` and computes::

    DH1 = DH(IK_A, SPK_B)   DH2 = DH(EK_A, IK_B)
    DH3 = DH(EK_A, SPK_B)   DH4 = DH(EK_A, OPK_B)    (only with an OPK)
    SK  = KDF(DH1 || DH2 || DH3 [|| DH4])

with ``KDF`` = HKDF-SHA256 over ``F || KM`` where ``F`` is 32 ``0xFF`` bytes,
salt = 32 zero bytes, info = ``b"Parley X3DH v1"`` (§2.2).  The associated
data is ``AD = Encode(IK_A) || Encode(IK_B)`` using the 32-byte Ed25519
encodings (§3.3).  Identity keys are Ed25519 and enter DH in their X25519
form (see :mod:`common.crypto.primitives`).

Bob runs :func:`x3dh_respond` (§3.4) with the header of Alice's initial
message and the private pre-keys *he chooses to try*: the SPK id in the
header is advisory so that a client can fall back to its previous SPK during
the rotation grace period; a wrong SPK simply yields an ``SK`` under which
the first Double Ratchet message will not decrypt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.crypto import primitives as P
from common.crypto.errors import InvalidHeader, UnknownPreKey
from common.crypto.keys import (
    ONE_TIME_PREKEY_USAGE,
    SIGNED_PREKEY_USAGE,
    IdentityKeyPair,
    IdentityPublicKey,
    OneTimePreKey,
    SignedPreKey,
    verify_prekey_json,
)
from common.crypto.serialization import (
    JsonDict,
    b64d,
    b64e,
    check_version,
    get_int,
    get_str,
)

X3DH_INFO = b"Parley X3DH v1"
_F = b"\xff" * 32


def x3dh_kdf(key_material: bytes) -> bytes:
    """``KDF(KM)`` of X3DH §2.2: HKDF-SHA256(F || KM, salt=0^32, info)."""
    return P.hkdf_sha256(_F + key_material, salt=bytes(32), info=X3DH_INFO, length=32)


@dataclass(frozen=True)
class PreKeyBundle:
    """A published pre-key bundle (X3DH §3.2), as JSON::

        {"type": "prekey_bundle", "v": 1, "user_id": ..., "device_id": ...,
         "identity_key": <b64 Ed25519>,
         "signed_prekey": {"usage": "signed_prekey", "key_id": 1, "key": <b64>,
                           "signatures": {user_id: {"ed25519:"+device_id: ...}}},
         "one_time_prekey": {... "usage": "one_time_prekey" ...}}   # optional
    """

    user_id: str
    device_id: str
    identity_key: IdentityPublicKey
    signed_prekey: JsonDict
    one_time_prekey: JsonDict | None = None

    TYPE = "prekey_bundle"
    VERSIONS = (1,)

    @classmethod
    def create(
        cls,
        identity: IdentityKeyPair,
        user_id: str,
        device_id: str,
        signed_prekey: SignedPreKey,
        one_time_prekey: OneTimePreKey | None = None,
    ) -> PreKeyBundle:
        otk = None
        if one_time_prekey is not None:
            otk = one_time_prekey.signed_public(identity, user_id, device_id)
        return cls(
            user_id,
            device_id,
            identity.public,
            signed_prekey.signed_public(identity, user_id, device_id),
            otk,
        )

    def to_dict(self) -> JsonDict:
        d: JsonDict = {
            "type": self.TYPE,
            "v": 1,
            "user_id": self.user_id,
            "device_id": self.device_id,
            "identity_key": self.identity_key.to_b64(),
            "signed_prekey": self.signed_prekey,
        }
        if self.one_time_prekey is not None:
            d["one_time_prekey"] = self.one_time_prekey
        return d

    @classmethod
    def from_dict(cls, d: Any) -> PreKeyBundle:
        check_version(d, cls.TYPE, cls.VERSIONS)
        spk = d.get("signed_prekey")
        otk = d.get("one_time_prekey")
        if not isinstance(spk, dict) or not (otk is None or isinstance(otk, dict)):
            raise InvalidHeader("prekey_bundle: malformed pre-keys")
        return cls(
            get_str(d, "user_id"),
            get_str(d, "device_id"),
            IdentityPublicKey.from_b64(d.get("identity_key")),
            spk,
            otk,
        )

    def verify(self) -> tuple[int, bytes, int | None, bytes | None]:
        """Check signatures; return ``(spk_id, spk, opk_id, opk)``."""
        spk_id, spk = verify_prekey_json(
            self.signed_prekey, SIGNED_PREKEY_USAGE, self.identity_key, self.user_id, self.device_id
        )
        if self.one_time_prekey is None:
            return spk_id, spk, None, None
        opk_id, opk = verify_prekey_json(
            self.one_time_prekey,
            ONE_TIME_PREKEY_USAGE,
            self.identity_key,
            self.user_id,
            self.device_id,
        )
        return spk_id, spk, opk_id, opk


@dataclass(frozen=True)
class X3DHHeader:
    """What Alice's initial message carries besides ciphertext (X3DH §3.3)."""

    identity_key: bytes  # IK_A, Ed25519
    ephemeral_key: bytes  # EK_A, X25519
    signed_prekey_id: int
    one_time_prekey_id: int | None

    def to_dict(self) -> JsonDict:
        d: JsonDict = {
            "identity_key": b64e(self.identity_key),
            "ephemeral_key": b64e(self.ephemeral_key),
            "signed_prekey_id": self.signed_prekey_id,
        }
        if self.one_time_prekey_id is not None:
            d["one_time_prekey_id"] = self.one_time_prekey_id
        return d

    @classmethod
    def from_dict(cls, d: Any) -> X3DHHeader:
        if not isinstance(d, dict):
            raise InvalidHeader("x3dh header: expected an object")
        otk = d.get("one_time_prekey_id")
        return cls(
            b64d(d.get("identity_key"), length=32, field="identity_key"),
            b64d(d.get("ephemeral_key"), length=32, field="ephemeral_key"),
            get_int(d, "signed_prekey_id"),
            None if otk is None else get_int(d, "one_time_prekey_id"),
        )


@dataclass(frozen=True)
class X3DHResult:
    """Output of either side: ``SK``, ``AD`` and what the ratchet needs."""

    shared_secret: bytes
    associated_data: bytes
    header: X3DHHeader
    peer_identity: IdentityPublicKey
    peer_signed_prekey: bytes | None  # initiator only: Bob's SPK = first DHr


def x3dh_initiate(
    identity: IdentityKeyPair,
    bundle: PreKeyBundle,
    *,
    ephemeral: X25519PrivateKey | None = None,
) -> X3DHResult:
    """Alice's side (§3.3).  Raises :class:`InvalidSignature` on a bad bundle."""
    spk_id, spk, opk_id, opk = bundle.verify()  # signatures first, always
    ek = ephemeral if ephemeral is not None else P.generate_x25519()
    ik_b = bundle.identity_key
    km = (
        P.x25519(identity.dh_private, spk)
        + P.x25519(ek, ik_b.x25519)
        + P.x25519(ek, spk)
    )
    if opk is not None:
        km += P.x25519(ek, opk)
    header = X3DHHeader(identity.public.ed25519, P.x25519_public_bytes(ek), spk_id, opk_id)
    return X3DHResult(
        shared_secret=x3dh_kdf(km),
        associated_data=identity.public.ed25519 + ik_b.ed25519,
        header=header,
        peer_identity=ik_b,
        peer_signed_prekey=spk,
    )


def x3dh_respond(
    identity: IdentityKeyPair,
    header: X3DHHeader,
    signed_prekey: SignedPreKey,
    one_time_prekey: OneTimePreKey | None = None,
) -> X3DHResult:
    """Bob's side (§3.4) with the SPK (and OPK) private keys he chooses to try.

    The caller must delete the one-time pre-key once the first message has
    decrypted (§3.4).  Raises :class:`UnknownPreKey` when the header names a
    one-time pre-key and none (or another one) is supplied.
    """
    if header.one_time_prekey_id is None:
        if one_time_prekey is not None:
            raise UnknownPreKey("header uses no one-time pre-key")
    elif one_time_prekey is None or one_time_prekey.key_id != header.one_time_prekey_id:
        raise UnknownPreKey(f"one-time pre-key {header.one_time_prekey_id} not supplied")
    ik_a = IdentityPublicKey(header.identity_key)
    ek = header.ephemeral_key
    km = (
        P.x25519(signed_prekey.private, ik_a.x25519)
        + P.x25519(identity.dh_private, ek)
        + P.x25519(signed_prekey.private, ek)
    )
    if one_time_prekey is not None:
        km += P.x25519(one_time_prekey.private, ek)
    return X3DHResult(
        shared_secret=x3dh_kdf(km),
        associated_data=ik_a.ed25519 + identity.public.ed25519,
        header=header,
        peer_identity=ik_a,
        peer_signed_prekey=None,
    )

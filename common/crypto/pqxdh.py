"""PQXDH key agreement (Signal, "The PQXDH Key Agreement Protocol", rev. 3).

PQXDH is X3DH (:mod:`common.crypto.x3dh`) plus one post-quantum KEM
encapsulation, so that a session's first secret stays secret against an
attacker who records the handshake today and owns a quantum computer later
(harvest now, decrypt later).  Authentication still rests on the identity keys
(Ed25519 / X25519): PQXDH gives post-quantum *forward secrecy*, not
post-quantum authentication (rev. 3 §4.1).

Parameters (§2.1)
-----------------
* ``curve`` = curve25519 (identity keys are Ed25519 and enter DH in their
  X25519 form, as in X3DH), ``hash`` = SHA-256.
* ``pqkem`` = **ML-KEM-1024** (FIPS 203) from ``cryptography``.  Why 1024 and
  not 768: it is the parameter set Signal deploys for PQXDH (Kyber-1024, now
  ML-KEM-1024), it is NIST category 5 -- the same margin as the 256-bit
  symmetric keys behind it -- and the price is only size (1568-byte public keys
  and ciphertexts instead of 1184/1088), paid once per session set-up and per
  uploaded pre-key, never per message.  The time cost is in ``tox -e bench``
  (``pqxdh_handshake`` beside ``x3dh_handshake``).
* ``info`` = ``b"Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024"``.
* ``EncodeKEM(pk)`` = one type byte :data:`KEM_TYPE_MLKEM1024` || the 1568-byte
  FIPS 203 encoding (§2.3: the encoding names the KEM, so a key of one KEM can
  never be read as another's).

Keys (§2.5, §3.2)
-----------------
Bob publishes, besides his X3DH keys, a signed last-resort KEM pre-key and a
pool of signed one-time KEM pre-keys: :mod:`common.crypto.kem_prekeys`.

Handshake (§3.3, §3.4)
----------------------
Alice verifies every signature first, picks the KEM key the server gave her
(one-time if there was one, else last-resort), computes::

    (CT, SS) = PQKEM-ENC(PQPK_B)
    DH1 = DH(IK_A, SPK_B)  DH2 = DH(EK_A, IK_B)  DH3 = DH(EK_A, SPK_B)  [DH4 = DH(EK_A, OPK_B)]
    SK  = HKDF-SHA256(F || DH1 || DH2 || DH3 [|| DH4] || SS, salt = 0^32, info)

with ``F`` = 32 ``0xFF`` bytes, and sends ``IK_A, EK_A, CT`` and the ids of
the pre-keys used (:class:`PQXDHHeader`).  The associated data is
``AD = Encode(IK_A) || Encode(IK_B) || SHA-256(EncodeKEM(PQPK_B) || CT)``:
the identity keys as in X3DH plus, as the "additional information" §3.3
allows, a hash binding the KEM public key and ciphertext, so that the first
message authenticates exactly which encapsulation it rides on (a re-encapsulated
or swapped ciphertext fails the AEAD).

ML-KEM decapsulation never fails on a well-formed ciphertext (implicit
rejection gives a pseudo-random ``SS``); a tampered ``CT`` therefore yields a
different ``SK`` and the first Double Ratchet message does not decrypt.

Downgrade protection (security considerations of the spec)
-----------------------------------------------------------
:func:`choose_handshake` is the rule the client calls with a peer's device keys
and the bundle the server handed out: a device that advertises
:data:`PQXDH_ALGORITHM` must be talked to with PQXDH; a bundle without a valid
signed KEM key for such a device raises :class:`DowngradeRefused`, never
silently falls back to X3DH.  :func:`check_incoming` is the responder's half: a
device that publishes KEM keys refuses X3DH-only initial messages.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.mlkem import MLKEM1024PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.crypto import primitives as P
from common.crypto.errors import CryptoError, InvalidHeader, UnknownPreKey
from common.crypto.kem_prekeys import (
    KEM_CIPHERTEXT_LEN,
    KEM_KEY_ALGORITHM,
    KEM_LAST_RESORT_USAGE,
    KEM_NAME,
    KEM_PREKEY_USAGE,
    KEM_PUBLIC_LEN,
    KEM_TYPE_MLKEM1024,
    KemPreKey,
    decode_kem,
    encode_kem,
    kem_upload_entries,
    verify_kem_prekey_json,
)
from common.crypto.keys import (
    IdentityKeyPair,
    IdentityPublicKey,
    OneTimePreKey,
    SignedPreKey,
)
from common.crypto.serialization import JsonDict, b64d, b64e, check_version, get_int
from common.crypto.x3dh import PreKeyBundle, X3DHHeader

PQXDH_INFO = b"Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024"
PQXDH_ALGORITHM = "im.parley.pqxdh.v1"
_F = b"\xff" * 32

Handshake = Literal["pqxdh", "x3dh"]


class DowngradeRefused(CryptoError):
    """A peer that publishes KEM keys would be talked to without them."""


def pqxdh_kdf(key_material: bytes) -> bytes:
    """``KDF(KM)`` of PQXDH §2.2: HKDF-SHA256(F || KM, salt=0^32, info)."""
    return P.hkdf_sha256(_F + key_material, salt=bytes(32), info=PQXDH_INFO, length=32)


def kem_binding(kem_public: bytes, ciphertext: bytes) -> bytes:
    """``SHA-256(EncodeKEM(PQPK_B) || CT)``, the KEM part of ``AD``."""
    return hashlib.sha256(encode_kem(kem_public) + ciphertext).digest()


@dataclass(frozen=True)
class PQPreKeyBundle:
    """An X3DH bundle plus the one signed KEM pre-key the server handed out.

    JSON: the :class:`PreKeyBundle` object with ``"type": "pq_prekey_bundle"``
    and an extra ``"kem_prekey"`` (signed, see :class:`KemPreKey`).
    """

    base: PreKeyBundle
    kem_prekey: JsonDict

    TYPE = "pq_prekey_bundle"
    VERSIONS = (1,)

    @classmethod
    def create(cls, identity: IdentityKeyPair, user_id: str, device_id: str,
               signed_prekey: SignedPreKey, kem_prekey: KemPreKey,
               one_time_prekey: OneTimePreKey | None = None) -> PQPreKeyBundle:
        base = PreKeyBundle.create(identity, user_id, device_id, signed_prekey, one_time_prekey)
        return cls(base, kem_prekey.signed_public(identity, user_id, device_id))

    @property
    def user_id(self) -> str:
        return self.base.user_id

    @property
    def device_id(self) -> str:
        return self.base.device_id

    @property
    def identity_key(self) -> IdentityPublicKey:
        return self.base.identity_key

    def to_dict(self) -> JsonDict:
        return {**self.base.to_dict(), "type": self.TYPE, "v": 1, "kem_prekey": self.kem_prekey}

    @classmethod
    def from_dict(cls, d: Any) -> PQPreKeyBundle:
        check_version(d, cls.TYPE, cls.VERSIONS)
        kem = d.get("kem_prekey")
        if not isinstance(kem, dict):
            raise InvalidHeader("pq_prekey_bundle: missing kem_prekey")
        base = PreKeyBundle.from_dict({**d, "type": PreKeyBundle.TYPE, "v": 1})
        return cls(base, kem)

    def verify(self) -> tuple[int, bytes, int | None, bytes | None, int, bytes, bool]:
        """All signatures; ``(spk_id, spk, opk_id, opk, kem_id, kem_public, last_resort)``."""
        spk_id, spk, opk_id, opk = self.base.verify()
        kem_id, kem, last_resort = verify_kem_prekey_json(
            self.kem_prekey, self.identity_key, self.user_id, self.device_id)
        return spk_id, spk, opk_id, opk, kem_id, kem, last_resort


@dataclass(frozen=True)
class PQXDHHeader:
    """What Alice's initial message carries besides ciphertext (§3.3)."""

    identity_key: bytes  # IK_A, Ed25519
    ephemeral_key: bytes  # EK_A, X25519
    signed_prekey_id: int
    one_time_prekey_id: int | None
    kem_prekey_id: int
    kem_last_resort: bool
    kem_ciphertext: bytes

    def x3dh_part(self) -> X3DHHeader:
        return X3DHHeader(self.identity_key, self.ephemeral_key, self.signed_prekey_id,
                          self.one_time_prekey_id)

    def to_dict(self) -> JsonDict:
        d = self.x3dh_part().to_dict()
        d.update(kem_prekey_id=self.kem_prekey_id, kem_last_resort=self.kem_last_resort,
                 kem_ciphertext=b64e(self.kem_ciphertext))
        return d

    @classmethod
    def from_dict(cls, d: Any) -> PQXDHHeader:
        base = X3DHHeader.from_dict(d)
        last_resort = d.get("kem_last_resort")
        if not isinstance(last_resort, bool):
            raise InvalidHeader("pqxdh header: kem_last_resort must be a boolean")
        return cls(base.identity_key, base.ephemeral_key, base.signed_prekey_id,
                   base.one_time_prekey_id, get_int(d, "kem_prekey_id"), last_resort,
                   b64d(d.get("kem_ciphertext"), length=KEM_CIPHERTEXT_LEN,
                        field="kem_ciphertext"))


@dataclass(frozen=True)
class PQXDHResult:
    """Output of either side: ``SK``, ``AD`` and what the ratchet needs."""

    shared_secret: bytes
    associated_data: bytes
    header: PQXDHHeader
    peer_identity: IdentityPublicKey
    peer_signed_prekey: bytes | None  # initiator only: Bob's SPK = first DHr


def pqxdh_initiate(
    identity: IdentityKeyPair,
    bundle: PQPreKeyBundle,
    *,
    ephemeral: X25519PrivateKey | None = None,
    encapsulation: tuple[bytes, bytes] | None = None,
) -> PQXDHResult:
    """Alice's side (§3.3).  Raises :class:`InvalidSignature` on a bad bundle.

    ``ephemeral`` and ``encapsulation`` (``(shared_secret, ciphertext)``) are
    for test vectors only; normally both are fresh.
    """
    spk_id, spk, opk_id, opk, kem_id, kem_public, last_resort = bundle.verify()
    ek = ephemeral if ephemeral is not None else P.generate_x25519()
    if encapsulation is None:
        encapsulation = MLKEM1024PublicKey.from_public_bytes(kem_public).encapsulate()
    ss, ct = encapsulation
    ik_b = bundle.identity_key
    km = (P.x25519(identity.dh_private, spk) + P.x25519(ek, ik_b.x25519)
          + P.x25519(ek, spk))
    if opk is not None:
        km += P.x25519(ek, opk)
    header = PQXDHHeader(identity.public.ed25519, P.x25519_public_bytes(ek), spk_id, opk_id,
                         kem_id, last_resort, ct)
    return PQXDHResult(
        shared_secret=pqxdh_kdf(km + ss),
        associated_data=identity.public.ed25519 + ik_b.ed25519 + kem_binding(kem_public, ct),
        header=header,
        peer_identity=ik_b,
        peer_signed_prekey=spk,
    )


def pqxdh_respond(
    identity: IdentityKeyPair,
    header: PQXDHHeader,
    signed_prekey: SignedPreKey,
    kem_prekey: KemPreKey,
    one_time_prekey: OneTimePreKey | None = None,
) -> PQXDHResult:
    """Bob's side (§3.4) with the private pre-keys the header names.

    The caller deletes the one-time pre-key and a one-time KEM pre-key once
    the first message decrypted (§3.4); a last-resort KEM key is kept.
    """
    if header.one_time_prekey_id is None:
        if one_time_prekey is not None:
            raise UnknownPreKey("header uses no one-time pre-key")
    elif one_time_prekey is None or one_time_prekey.key_id != header.one_time_prekey_id:
        raise UnknownPreKey(f"one-time pre-key {header.one_time_prekey_id} not supplied")
    if kem_prekey.key_id != header.kem_prekey_id or kem_prekey.last_resort != header.kem_last_resort:
        raise UnknownPreKey(f"KEM pre-key {header.kem_prekey_id} not supplied")
    ik_a = IdentityPublicKey(header.identity_key)
    ek = header.ephemeral_key
    km = (P.x25519(signed_prekey.private, ik_a.x25519) + P.x25519(identity.dh_private, ek)
          + P.x25519(signed_prekey.private, ek))
    if one_time_prekey is not None:
        km += P.x25519(one_time_prekey.private, ek)
    ss = kem_prekey.decapsulate(header.kem_ciphertext)
    return PQXDHResult(
        shared_secret=pqxdh_kdf(km + ss),
        associated_data=(ik_a.ed25519 + identity.public.ed25519
                         + kem_binding(kem_prekey.public_bytes, header.kem_ciphertext)),
        header=header,
        peer_identity=ik_a,
        peer_signed_prekey=None,
    )


# --------------------------------------------------------------------------- downgrade rules


def advertises_pqxdh(device_keys: Mapping[str, Any]) -> bool:
    """True when a (verified) device keys object lists :data:`PQXDH_ALGORITHM`."""
    algorithms = device_keys.get("algorithms")
    return isinstance(algorithms, list) and PQXDH_ALGORITHM in algorithms


def choose_handshake(device_keys: Mapping[str, Any], bundle: Mapping[str, Any]) -> Handshake:
    """Which handshake to run with a peer device, refusing downgrades.

    ``device_keys`` is the peer's self-signed device keys object (already
    verified by the caller); ``bundle`` the claimed bundle JSON.  A device that
    advertises PQXDH yields ``"pqxdh"`` only if the bundle carries a KEM
    pre-key whose signature verifies; otherwise :class:`DowngradeRefused`.
    A device that does not advertise PQXDH yields ``"pqxdh"`` when the bundle
    happens to carry a valid KEM key and ``"x3dh"`` otherwise.
    """
    kem = bundle.get("kem_prekey")
    if kem is None:
        if advertises_pqxdh(device_keys):
            raise DowngradeRefused("peer publishes KEM keys but the bundle has none")
        return "x3dh"
    try:
        PQPreKeyBundle.from_dict(bundle).verify()
    except CryptoError as exc:
        raise DowngradeRefused(f"peer's KEM pre-key is unusable: {exc}") from exc
    return "pqxdh"


def check_incoming(local_publishes_kem: bool, header: X3DHHeader | PQXDHHeader) -> None:
    """Responder rule: a device that publishes KEM keys accepts PQXDH only."""
    if local_publishes_kem and not isinstance(header, PQXDHHeader):
        raise DowngradeRefused("X3DH-only initial message to a device that publishes KEM keys")


__all__ = [
    "KEM_CIPHERTEXT_LEN",
    "KEM_KEY_ALGORITHM",
    "KEM_LAST_RESORT_USAGE",
    "KEM_NAME",
    "KEM_PREKEY_USAGE",
    "KEM_PUBLIC_LEN",
    "KEM_TYPE_MLKEM1024",
    "PQXDH_ALGORITHM",
    "DowngradeRefused",
    "KemPreKey",
    "PQPreKeyBundle",
    "PQXDHHeader",
    "PQXDHResult",
    "advertises_pqxdh",
    "check_incoming",
    "choose_handshake",
    "decode_kem",
    "encode_kem",
    "kem_upload_entries",
    "pqxdh_initiate",
    "pqxdh_respond",
    "verify_kem_prekey_json",
]

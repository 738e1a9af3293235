"""Pairwise sessions: X3DH (§3.3–§3.4) feeding a Double Ratchet (DR §3.3, §7.1).

A :class:`Session` is what a client keeps per (peer user, peer device).  The
initiator's messages are :class:`PreKeyMessage` (X3DH header + ratchet
message) until it has received a reply, then plain ratchet messages — the
usual Signal/Olm arrangement, which lets Bob build his side from whichever
initial message arrives first.

Wire form (a JSON object, to be carried in a to-device event)::

    {"v": 1, "type": "prekey", "x3dh": {...X3DHHeader...}, "body": <b64>}
    {"v": 1, "type": "message", "body": <b64 header || ciphertext>}
    {"v": 1, "type": "pqprekey", "pqxdh": {...PQXDHHeader...}, "body": <b64>}

A ``pqprekey`` message starts a session with PQXDH (:mod:`common.crypto.pqxdh`):
:meth:`Session.initiate_pqxdh` and :meth:`Session.accept` (given the KEM
pre-key lookup; ``require_pq=True`` refuses X3DH-only initial messages, the
downgrade rule of :func:`common.crypto.pqxdh.check_incoming`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from common.crypto import primitives as P
from common.crypto.double_ratchet import DoubleRatchet, RatchetMessage
from common.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    InvalidHeader,
    UnknownPreKey,
    UnsupportedVersion,
)
from common.crypto.keys import (
    IdentityKeyPair,
    IdentityPublicKey,
    OneTimePreKey,
    SignedPreKey,
)
from common.crypto.pqxdh import (
    KemPreKey,
    PQPreKeyBundle,
    PQXDHHeader,
    PQXDHResult,
    check_incoming,
    pqxdh_initiate,
    pqxdh_respond,
)
from common.crypto.serialization import JsonDict, b64d, b64e, check_version, get_str
from common.crypto.x3dh import (
    PreKeyBundle,
    X3DHHeader,
    X3DHResult,
    x3dh_initiate,
    x3dh_respond,
)

WIRE_VERSION = 1


@dataclass(frozen=True)
class PreKeyMessage:
    """An initial message: X3DH header plus the first ratchet message(s)."""

    x3dh: X3DHHeader | PQXDHHeader
    message: RatchetMessage

    def to_dict(self) -> JsonDict:
        if isinstance(self.x3dh, PQXDHHeader):
            return {"v": WIRE_VERSION, "type": "pqprekey", "pqxdh": self.x3dh.to_dict(),
                    "body": b64e(self.message.to_bytes())}
        return {
            "v": WIRE_VERSION,
            "type": "prekey",
            "x3dh": self.x3dh.to_dict(),
            "body": b64e(self.message.to_bytes()),
        }


def encode_message(message: PreKeyMessage | RatchetMessage) -> JsonDict:
    if isinstance(message, PreKeyMessage):
        return message.to_dict()
    return {"v": WIRE_VERSION, "type": "message", "body": b64e(message.to_bytes())}


def decode_message(d: Any) -> PreKeyMessage | RatchetMessage:
    """Parse the wire form; raises :class:`InvalidHeader`/:class:`UnsupportedVersion`."""
    if not isinstance(d, dict):
        raise InvalidHeader("message: expected an object")
    if d.get("v") != WIRE_VERSION:
        raise UnsupportedVersion(f"message version {d.get('v')!r}")
    body = RatchetMessage.from_bytes(b64d(d.get("body"), field="body"))
    kind = d.get("type")
    if kind == "message":
        return body
    if kind == "prekey":
        return PreKeyMessage(X3DHHeader.from_dict(d.get("x3dh")), body)
    if kind == "pqprekey":
        return PreKeyMessage(PQXDHHeader.from_dict(d.get("pqxdh")), body)
    raise InvalidHeader(f"unknown message type {kind!r}")


@dataclass(frozen=True)
class AcceptResult:
    """Outcome of :meth:`Session.accept`.  Delete ``one_time_prekey_id``."""

    session: Session
    plaintext: bytes
    signed_prekey_id: int
    one_time_prekey_id: int | None
    kem_prekey_id: int | None = None  # PQXDH only
    kem_last_resort: bool = False  # True: keep the KEM key; False: delete it too

    @property
    def pqxdh(self) -> bool:
        return self.kem_prekey_id is not None


KemLookup = Callable[[int, bool], KemPreKey | None]


def _no_kem(_key_id: int, _last_resort: bool) -> KemPreKey | None:
    return None


class Session:
    """X3DH + Double Ratchet with one peer device."""

    TYPE = "session"
    VERSIONS = (1,)

    def __init__(
        self,
        peer_user_id: str,
        peer_device_id: str,
        peer_identity: IdentityPublicKey,
        ratchet: DoubleRatchet,
        pending_x3dh: X3DHHeader | PQXDHHeader | None,
        session_id: bytes,
    ) -> None:
        self.peer_user_id = peer_user_id
        self.peer_device_id = peer_device_id
        self.peer_identity = peer_identity
        self.ratchet = ratchet
        self.pending_x3dh = pending_x3dh
        self.session_id = session_id

    @staticmethod
    def _session_id(header: X3DHHeader | PQXDHHeader) -> bytes:
        return P.hmac_sha256(b"Parley session id v1", header.identity_key + header.ephemeral_key)

    @classmethod
    def initiate(cls, identity: IdentityKeyPair, bundle: PreKeyBundle) -> Session:
        """Alice: verify ``bundle`` (raises :class:`InvalidSignature`) and start."""
        return cls._started(bundle.user_id, bundle.device_id, x3dh_initiate(identity, bundle))

    @classmethod
    def initiate_pqxdh(cls, identity: IdentityKeyPair, bundle: PQPreKeyBundle) -> Session:
        """Alice with PQXDH: verify every signature of ``bundle`` and start."""
        return cls._started(bundle.user_id, bundle.device_id, pqxdh_initiate(identity, bundle))

    @classmethod
    def _started(cls, user_id: str, device_id: str, r: X3DHResult | PQXDHResult) -> Session:
        """The initiator's session after an X3DH or PQXDH agreement ``r``."""
        assert r.peer_signed_prekey is not None
        ratchet = DoubleRatchet.init_initiator(
            r.shared_secret, r.peer_signed_prekey, r.associated_data
        )
        return cls(user_id, device_id, r.peer_identity, ratchet, r.header, cls._session_id(r.header))

    @classmethod
    def accept(
        cls,
        identity: IdentityKeyPair,
        message: PreKeyMessage,
        peer_user_id: str,
        peer_device_id: str,
        signed_prekeys: Sequence[SignedPreKey],
        one_time_prekey: Callable[[int], OneTimePreKey | None],
        kem_prekey: KemLookup = _no_kem,
        *,
        require_pq: bool = False,
    ) -> AcceptResult:
        """Bob: build a session from an initial message and decrypt it.

        ``signed_prekeys`` are the SPKs still held (current and the previous
        one in its grace period); the one whose id the header names is tried
        first, then the others.  ``one_time_prekey(id)`` looks up an OPK.
        The caller checks ``peer_identity`` against the sender's device keys.
        For a PQXDH message ``kem_prekey(id, last_resort)`` looks up the KEM
        pre-key; ``require_pq`` (this device publishes KEM keys) refuses X3DH-only
        messages with :class:`~common.crypto.pqxdh.DowngradeRefused`.
        """
        h = message.x3dh
        check_incoming(require_pq, h)
        kem: KemPreKey | None = None
        if isinstance(h, PQXDHHeader):
            kem = kem_prekey(h.kem_prekey_id, h.kem_last_resort)
            if kem is None:
                raise UnknownPreKey(f"KEM pre-key {h.kem_prekey_id} unknown")
        otk = None
        if h.one_time_prekey_id is not None:
            otk = one_time_prekey(h.one_time_prekey_id)
            if otk is None:
                raise UnknownPreKey(f"one-time pre-key {h.one_time_prekey_id} unknown")
        ordered = sorted(signed_prekeys, key=lambda k: k.key_id != h.signed_prekey_id)
        if not ordered:
            raise UnknownPreKey("no signed pre-key to try")
        last: CryptoError = DecryptionFailed("no signed pre-key matched")
        for spk in ordered:
            if isinstance(h, PQXDHHeader):
                assert kem is not None
                r: X3DHResult | PQXDHResult = pqxdh_respond(identity, h, spk, kem, otk)
            else:
                r = x3dh_respond(identity, h, spk, otk)
            ratchet = DoubleRatchet.init_responder(r.shared_secret, spk.private, r.associated_data)
            try:
                plaintext = ratchet.decrypt(message.message)
            except CryptoError as exc:
                last = exc
                continue
            session = cls(peer_user_id, peer_device_id, r.peer_identity, ratchet, None,
                          cls._session_id(h))
            if isinstance(h, PQXDHHeader):
                return AcceptResult(session, plaintext, spk.key_id, h.one_time_prekey_id,
                                    h.kem_prekey_id, h.kem_last_resort)
            return AcceptResult(session, plaintext, spk.key_id, h.one_time_prekey_id)
        raise last

    def encrypt(self, plaintext: bytes) -> PreKeyMessage | RatchetMessage:
        msg = self.ratchet.encrypt(plaintext)
        if self.pending_x3dh is not None:
            return PreKeyMessage(self.pending_x3dh, msg)
        return msg

    def decrypt(self, message: PreKeyMessage | RatchetMessage) -> bytes:
        """Decrypt (commit-on-success).  A pre-key message for this session
        (e.g. a second initial message from Alice) is accepted if its X3DH
        header belongs to this session."""
        if isinstance(message, PreKeyMessage):
            if self._session_id(message.x3dh) != self.session_id:
                raise InvalidHeader("pre-key message belongs to another session")
            message = message.message
        plaintext = self.ratchet.decrypt(message)
        self.pending_x3dh = None  # the peer has our session: stop sending X3DH
        return plaintext

    def to_dict(self) -> JsonDict:
        return {
            "type": self.TYPE,
            "v": 1,
            "peer_user_id": self.peer_user_id,
            "peer_device_id": self.peer_device_id,
            "peer_identity": self.peer_identity.to_b64(),
            "ratchet": self.ratchet.to_dict(),
            "pending_x3dh": None if self.pending_x3dh is None else self.pending_x3dh.to_dict(),
            "session_id": b64e(self.session_id),
        }

    @classmethod
    def from_dict(cls, d: Any) -> Session:
        check_version(d, cls.TYPE, cls.VERSIONS)
        pending = d.get("pending_x3dh")
        return cls(
            get_str(d, "peer_user_id"),
            get_str(d, "peer_device_id"),
            IdentityPublicKey.from_b64(d.get("peer_identity")),
            DoubleRatchet.from_dict(d.get("ratchet")),
            None if pending is None else _header_from_dict(pending),
            b64d(d.get("session_id"), length=32, field="session_id"),
        )


def _header_from_dict(d: Any) -> X3DHHeader | PQXDHHeader:
    if isinstance(d, dict) and "kem_ciphertext" in d:
        return PQXDHHeader.from_dict(d)
    return X3DHHeader.from_dict(d)

"""The Double Ratchet (Signal, "The Double Ratchet Algorithm", rev. 1).

Follows §3 of the spec with the header used as associated data (§3.5 gives
the same algorithm with header encryption; Parley does not encrypt headers).

* ``KDF_RK(rk, dh_out)`` = HKDF-SHA256(ikm=dh_out, salt=rk,
  info=``b"Parley DR root v1"``) → 64 bytes = new root key || chain key (§5.2).
* ``KDF_CK(ck)`` = (HMAC-SHA256(ck, 0x02), HMAC-SHA256(ck, 0x01)) → next chain
  key, message key (§5.2).
* ``ENCRYPT(mk, pt, ad)``: §5.2 recommends AES-CBC + HMAC with keys from HKDF;
  Parley uses AES-256-GCM with key || nonce = HKDF-SHA256(mk, salt=0^32,
  info=``b"Parley DR message v1"``, 44).  Each message key is used once, so
  the derived nonce never repeats under a key.
* ``AD`` given to the AEAD is ``X3DH AD || encoded header`` (§3.4 ``CONCAT``).

Receiving (§3.4 ``RatchetDecrypt``) works on a copy of the state and commits
it only when the AEAD accepts the message: a forged, corrupted, replayed or
out-of-bounds message leaves the ratchet exactly as it was.  Bounds:
``MAX_SKIP`` (256) message keys may be skipped per chain step, and at most
``MAX_STORED_SKIPPED`` (2000) skipped keys are kept in total, oldest evicted
first.  A message whose key was already used — or was skipped and has since
been evicted — raises :class:`DuplicateMessage`.
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from common.crypto import primitives as P
from common.crypto.errors import (
    DecryptionFailed,
    DuplicateMessage,
    InvalidHeader,
    SessionNotReady,
    TooManySkippedMessages,
    UnsupportedVersion,
)
from common.crypto.serialization import (
    JsonDict,
    b64d,
    b64e,
    check_version,
    dumps,
    get_int,
    get_list,
)

MAX_SKIP = 256
MAX_STORED_SKIPPED = 2000
MAX_PREVIOUS_CHAINS = 256

ROOT_INFO = b"Parley DR root v1"
MESSAGE_INFO = b"Parley DR message v1"
HEADER_VERSION = 1
_HEADER = struct.Struct(">B32sII")
HEADER_LEN = _HEADER.size  # 41


def kdf_rk(root_key: bytes, dh_out: bytes) -> tuple[bytes, bytes]:
    """``KDF_RK`` (§5.2): returns ``(new_root_key, chain_key)``."""
    out = P.hkdf_sha256(dh_out, salt=root_key, info=ROOT_INFO, length=64)
    return out[:32], out[32:]


def kdf_ck(chain_key: bytes) -> tuple[bytes, bytes]:
    """``KDF_CK`` (§5.2): returns ``(next_chain_key, message_key)``."""
    return P.hmac_sha256(chain_key, b"\x02"), P.hmac_sha256(chain_key, b"\x01")


def message_key_material(message_key: bytes) -> tuple[bytes, bytes]:
    """AES-256-GCM key and nonce for one message key."""
    out = P.hkdf_sha256(message_key, salt=bytes(32), info=MESSAGE_INFO, length=44)
    return out[:32], out[32:]


def aead_encrypt(message_key: bytes, plaintext: bytes, ad: bytes) -> bytes:
    key, nonce = message_key_material(message_key)
    return P.aes_gcm_encrypt(key, nonce, plaintext, ad)


def aead_decrypt(message_key: bytes, ciphertext: bytes, ad: bytes) -> bytes:
    key, nonce = message_key_material(message_key)
    return P.aes_gcm_decrypt(key, nonce, ciphertext, ad)


@dataclass(frozen=True)
class Header:
    """``HEADER(dh_pair, pn, n)`` (§3.4), encoded as
    ``version(1) || dh(32) || pn(4, BE) || n(4, BE)``."""

    dh: bytes
    pn: int
    n: int

    def encode(self) -> bytes:
        return _HEADER.pack(HEADER_VERSION, self.dh, self.pn, self.n)

    @classmethod
    def decode(cls, data: bytes) -> Header:
        if len(data) != HEADER_LEN:
            raise InvalidHeader("ratchet header has the wrong length")
        version, dh, pn, n = _HEADER.unpack(data)
        if version != HEADER_VERSION:
            raise UnsupportedVersion(f"ratchet header version {version}")
        return cls(dh, pn, n)


@dataclass(frozen=True)
class RatchetMessage:
    """A Double Ratchet message on the wire: ``header || AES-GCM ciphertext``."""

    header: Header
    ciphertext: bytes

    def to_bytes(self) -> bytes:
        return self.header.encode() + self.ciphertext

    @classmethod
    def from_bytes(cls, data: bytes) -> RatchetMessage:
        if len(data) < HEADER_LEN + P.TAG_LEN:
            raise InvalidHeader("ratchet message too short")
        return cls(Header.decode(data[:HEADER_LEN]), data[HEADER_LEN:])


@dataclass
class _State:
    """The state variables of §3.2 (``DHs, DHr, RK, CKs, CKr, Ns, Nr, PN,
    MKSKIPPED``) plus the X3DH ``AD`` and the finished receiving chains."""

    dhs: X25519PrivateKey
    dhr: bytes | None
    rk: bytes
    cks: bytes | None
    ckr: bytes | None
    ns: int
    nr: int
    pn: int
    ad: bytes
    skipped: OrderedDict[tuple[bytes, int], bytes]
    previous: OrderedDict[bytes, int]  # old DHr -> length of that chain
    dhs_pub: bytes = b""  # cache of DHs's public key (not serialised)

    def __post_init__(self) -> None:
        if not self.dhs_pub:
            self.dhs_pub = P.x25519_public_bytes(self.dhs)

    def copy(self) -> _State:
        return _State(
            self.dhs, self.dhr, self.rk, self.cks, self.ckr, self.ns, self.nr, self.pn, self.ad,
            OrderedDict(self.skipped), OrderedDict(self.previous), self.dhs_pub,
        )


class DoubleRatchet:
    """One Double Ratchet session with one peer device."""

    TYPE = "double_ratchet"
    VERSIONS = (1,)

    def __init__(self, state: _State) -> None:
        self._s = state

    # ---------------------------------------------------------------- init (§3.3)

    @classmethod
    def init_initiator(
        cls, shared_secret: bytes, peer_ratchet_key: bytes, associated_data: bytes
    ) -> DoubleRatchet:
        """``RatchetInitAlice``: ``peer_ratchet_key`` is Bob's signed pre-key."""
        dhs = P.generate_x25519()
        rk, cks = kdf_rk(shared_secret, P.x25519(dhs, peer_ratchet_key))
        return cls(
            _State(dhs, peer_ratchet_key, rk, cks, None, 0, 0, 0, associated_data,
                   OrderedDict(), OrderedDict())
        )

    @classmethod
    def init_responder(
        cls, shared_secret: bytes, own_ratchet_key: X25519PrivateKey, associated_data: bytes
    ) -> DoubleRatchet:
        """``RatchetInitBob``: ``own_ratchet_key`` is the signed pre-key pair."""
        return cls(
            _State(own_ratchet_key, None, shared_secret, None, None, 0, 0, 0, associated_data,
                   OrderedDict(), OrderedDict())
        )

    # ---------------------------------------------------------------- inspect

    @property
    def can_send(self) -> bool:
        return self._s.cks is not None

    @property
    def associated_data(self) -> bytes:
        return self._s.ad

    @property
    def stored_skipped_keys(self) -> int:
        return len(self._s.skipped)

    def fingerprint(self) -> bytes:
        """Digest of the whole state; equal iff the states are equal (tests)."""
        return P.hmac_sha256(b"state", _dumps_state(self._s))

    # ---------------------------------------------------------------- encrypt (§3.4)

    def encrypt(self, plaintext: bytes) -> RatchetMessage:
        """``RatchetEncrypt``.  Raises :class:`SessionNotReady` for a responder
        that has not received a message yet."""
        s = self._s
        if s.cks is None:
            raise SessionNotReady("no sending chain before the first received message")
        s.cks, mk = kdf_ck(s.cks)
        header = Header(s.dhs_pub, s.pn, s.ns)
        s.ns += 1
        return RatchetMessage(header, aead_encrypt(mk, plaintext, s.ad + header.encode()))

    # ---------------------------------------------------------------- decrypt (§3.4)

    def decrypt(self, message: RatchetMessage | bytes) -> bytes:
        """``RatchetDecrypt`` with commit-on-success.

        Raises :class:`InvalidHeader`, :class:`DecryptionFailed`,
        :class:`DuplicateMessage` or :class:`TooManySkippedMessages`; in each
        case the state is unchanged.
        """
        if isinstance(message, bytes):
            message = RatchetMessage.from_bytes(message)
        h = message.header
        ad = self._s.ad + h.encode()
        skipped_mk = self._s.skipped.get((h.dh, h.n))
        if skipped_mk is not None:  # TrySkippedMessageKeys
            plaintext = aead_decrypt(skipped_mk, message.ciphertext, ad)
            del self._s.skipped[(h.dh, h.n)]
            return plaintext
        s = self._s.copy()
        if h.dh != s.dhr:
            final = s.previous.get(h.dh)
            if final is not None:
                if h.n < final:
                    raise DuplicateMessage("message key already used or discarded")
                raise DecryptionFailed("message beyond the end of a finished chain")
            _skip(s, h.pn)
            _dh_ratchet(s, h)
        elif h.n < s.nr:
            raise DuplicateMessage("message key already used or discarded")
        _skip(s, h.n)
        assert s.ckr is not None
        s.ckr, mk = kdf_ck(s.ckr)
        s.nr += 1
        plaintext = aead_decrypt(mk, message.ciphertext, ad)
        self._s = s  # commit
        return plaintext

    # ---------------------------------------------------------------- serialisation

    def to_dict(self) -> JsonDict:
        return _state_to_dict(self._s)

    @classmethod
    def from_dict(cls, d: Any) -> DoubleRatchet:
        check_version(d, cls.TYPE, cls.VERSIONS)
        return cls(_state_from_dict(d))


def _skip(s: _State, until: int) -> None:
    """``SkipMessageKeys`` (§3.4) with the global bound on stored keys."""
    if s.nr + MAX_SKIP < until:
        raise TooManySkippedMessages(f"would skip {until - s.nr} > {MAX_SKIP} message keys")
    if s.ckr is None or s.dhr is None:
        return
    while s.nr < until:
        s.ckr, mk = kdf_ck(s.ckr)
        s.skipped[(s.dhr, s.nr)] = mk
        s.nr += 1
        while len(s.skipped) > MAX_STORED_SKIPPED:
            s.skipped.popitem(last=False)


def _dh_ratchet(s: _State, h: Header) -> None:
    """``DHRatchet`` (§3.4)."""
    if s.dhr is not None:
        s.previous[s.dhr] = s.nr
        while len(s.previous) > MAX_PREVIOUS_CHAINS:
            s.previous.popitem(last=False)
    s.pn, s.ns, s.nr = s.ns, 0, 0
    s.dhr = h.dh
    s.rk, s.ckr = kdf_rk(s.rk, P.x25519(s.dhs, s.dhr))
    s.dhs = P.generate_x25519()
    s.dhs_pub = P.x25519_public_bytes(s.dhs)
    s.rk, s.cks = kdf_rk(s.rk, P.x25519(s.dhs, s.dhr))


def _opt(b: bytes | None) -> str | None:
    return None if b is None else b64e(b)


def _state_to_dict(s: _State) -> JsonDict:
    return {
        "type": DoubleRatchet.TYPE,
        "v": 1,
        "dhs": b64e(P.x25519_private_bytes(s.dhs)),
        "dhr": _opt(s.dhr),
        "rk": b64e(s.rk),
        "cks": _opt(s.cks),
        "ckr": _opt(s.ckr),
        "ns": s.ns,
        "nr": s.nr,
        "pn": s.pn,
        "ad": b64e(s.ad),
        "skipped": [[b64e(dh), n, b64e(mk)] for (dh, n), mk in s.skipped.items()],
        "previous": [[b64e(dh), n] for dh, n in s.previous.items()],
    }


def _dumps_state(s: _State) -> bytes:
    return dumps(_state_to_dict(s))


def _opt_key(d: JsonDict, name: str) -> bytes | None:
    value = d.get(name)
    return None if value is None else b64d(value, length=32, field=name)


def _state_from_dict(d: JsonDict) -> _State:
    skipped: OrderedDict[tuple[bytes, int], bytes] = OrderedDict()
    for item in get_list(d, "skipped"):
        if not isinstance(item, list) or len(item) != 3 or not isinstance(item[1], int):
            raise InvalidHeader("double_ratchet: malformed skipped key")
        skipped[(b64d(item[0], length=32), item[1])] = b64d(item[2], length=32)
    previous: OrderedDict[bytes, int] = OrderedDict()
    for item in get_list(d, "previous"):
        if not isinstance(item, list) or len(item) != 2 or not isinstance(item[1], int):
            raise InvalidHeader("double_ratchet: malformed previous chain")
        previous[b64d(item[0], length=32)] = item[1]
    return _State(
        dhs=P.load_x25519_private(b64d(d.get("dhs"), length=32, field="dhs")),
        dhr=_opt_key(d, "dhr"),
        rk=b64d(d.get("rk"), length=32, field="rk"),
        cks=_opt_key(d, "cks"),
        ckr=_opt_key(d, "ckr"),
        ns=get_int(d, "ns"),
        nr=get_int(d, "nr"),
        pn=get_int(d, "pn"),
        ad=b64d(d.get("ad"), field="ad"),
        skipped=skipped,
        previous=previous,
    )

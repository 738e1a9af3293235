"""Sender Keys for group messages (Signal's group messaging, as in libsignal's
``SenderKeyMessage`` / ``SenderKeyDistributionMessage``).

Each sender device owns, per group, a chain: a random ``chain_id``, a
``chain key`` with an ``iteration`` counter, and an Ed25519 *signing key*.
It hands ``(chain_id, iteration, chain_key, signing_public_key)`` — a
:class:`SenderKeyDistribution` — to every member over the pairwise Double
Ratchet sessions.  Every group message is

    header  = version(1) || chain_id(4, BE) || iteration(4, BE)
    body    = AES-256-GCM(mk_key, mk_nonce, plaintext, aad=header || ad)
    message = header || body || Ed25519_sign(signing_key, header || body)

Because only the sender holds the signing private key, members who know the
chain key can read but cannot forge each other's messages (the earlier app's
sender keys were symmetric only).  Receivers verify the signature before
anything else.

Chain step (like DR §5.2 ``KDF_CK``): ``seed = HMAC(ck, 0x01)``,
``ck' = HMAC(ck, 0x02)``; ``mk_key || mk_nonce = HKDF-SHA256(seed,
salt=0^32, info=b"Parley sender key v1", 44)`` — the salt is 32 zero bytes,
not empty (audit M2).  Receivers fast-forward at most ``MAX_SKIP`` (256)
iterations (audit C2), keep at most ``MAX_STORED_SKIPPED`` skipped keys, and
commit state only after the message decrypted.
"""

from __future__ import annotations

import secrets
import struct
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.crypto import primitives as P
from common.crypto.errors import (
    CryptoError,
    DuplicateMessage,
    InvalidHeader,
    TooManySkippedMessages,
    UnsupportedVersion,
)
from common.crypto.keys import IdentityPublicKey
from common.crypto.serialization import (
    JsonDict,
    b64d,
    b64e,
    check_version,
    dumps,
    get_int,
    get_list,
    loads,
)

MAX_SKIP = 256
MAX_STORED_SKIPPED = 2000
MESSAGE_VERSION = 1
SENDER_KEY_INFO = b"Parley sender key v1"
_HEADER = struct.Struct(">BII")
HEADER_LEN = _HEADER.size  # 9
SIGNATURE_LEN = 64
_MAX_ITERATION = 2**32 - 1


def sender_chain_step(chain_key: bytes) -> tuple[bytes, bytes]:
    """Returns ``(next_chain_key, message_key_seed)``."""
    return P.hmac_sha256(chain_key, b"\x02"), P.hmac_sha256(chain_key, b"\x01")


def sender_message_key(seed: bytes) -> tuple[bytes, bytes]:
    """AES-256-GCM key and nonce from a message key seed (salt = 0^32, M2)."""
    out = P.hkdf_sha256(seed, salt=bytes(32), info=SENDER_KEY_INFO, length=44)
    return out[:32], out[32:]


@dataclass(frozen=True)
class SenderKeyDistribution:
    """The distribution message, sent to each member over a pairwise session."""

    chain_id: int
    iteration: int
    chain_key: bytes
    signing_key: bytes  # Ed25519 public

    TYPE = "sender_key_distribution"
    VERSIONS = (1,)

    def to_dict(self) -> JsonDict:
        return {
            "type": self.TYPE,
            "v": 1,
            "chain_id": self.chain_id,
            "iteration": self.iteration,
            "chain_key": b64e(self.chain_key),
            "signing_key": b64e(self.signing_key),
        }

    @classmethod
    def from_dict(cls, d: Any) -> SenderKeyDistribution:
        check_version(d, cls.TYPE, cls.VERSIONS)
        signing_key = b64d(d.get("signing_key"), length=32, field="signing_key")
        IdentityPublicKey(signing_key)  # validate the point
        return cls(
            get_int(d, "chain_id"),
            get_int(d, "iteration"),
            b64d(d.get("chain_key"), length=32, field="chain_key"),
            signing_key,
        )

    def to_bytes(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def from_bytes(cls, data: bytes) -> SenderKeyDistribution:
        return cls.from_dict(loads(data))


@dataclass(frozen=True)
class SenderKeyMessage:
    chain_id: int
    iteration: int
    ciphertext: bytes
    signature: bytes

    @property
    def header(self) -> bytes:
        return _HEADER.pack(MESSAGE_VERSION, self.chain_id, self.iteration)

    @property
    def signed_part(self) -> bytes:
        return self.header + self.ciphertext

    def to_bytes(self) -> bytes:
        return self.signed_part + self.signature

    @classmethod
    def from_bytes(cls, data: bytes) -> SenderKeyMessage:
        if len(data) < HEADER_LEN + P.TAG_LEN + SIGNATURE_LEN:
            raise InvalidHeader("sender key message too short")
        version, chain_id, iteration = _HEADER.unpack(data[:HEADER_LEN])
        if version != MESSAGE_VERSION:
            raise UnsupportedVersion(f"sender key message version {version}")
        return cls(chain_id, iteration, data[HEADER_LEN:-SIGNATURE_LEN], data[-SIGNATURE_LEN:])


class OutboundSenderKey:
    """Our own sending chain for one group."""

    TYPE = "outbound_sender_key"
    VERSIONS = (1,)

    def __init__(
        self, chain_id: int, iteration: int, chain_key: bytes, signing_key: Ed25519PrivateKey
    ) -> None:
        self.chain_id = chain_id
        self.iteration = iteration
        self.chain_key = chain_key
        self.signing_key = signing_key

    @classmethod
    def create(cls) -> OutboundSenderKey:
        return cls(secrets.randbits(32), 0, P.random_bytes(32), P.generate_ed25519())

    def distribution(self) -> SenderKeyDistribution:
        """Distribution message at the *current* iteration (new members cannot
        read earlier messages)."""
        return SenderKeyDistribution(
            self.chain_id, self.iteration, self.chain_key,
            P.ed25519_public_bytes(self.signing_key),
        )

    def encrypt(self, plaintext: bytes, associated_data: bytes = b"") -> SenderKeyMessage:
        """Encrypt and sign one group message; ``associated_data`` (e.g. the
        room id) must be given again to :meth:`InboundSenderKey.decrypt`."""
        if self.iteration >= _MAX_ITERATION:
            raise CryptoError("sender chain exhausted: create a new one")
        next_ck, seed = sender_chain_step(self.chain_key)
        key, nonce = sender_message_key(seed)
        header = _HEADER.pack(MESSAGE_VERSION, self.chain_id, self.iteration)
        ciphertext = P.aes_gcm_encrypt(key, nonce, plaintext, header + associated_data)
        signature = self.signing_key.sign(header + ciphertext)
        msg = SenderKeyMessage(self.chain_id, self.iteration, ciphertext, signature)
        self.chain_key, self.iteration = next_ck, self.iteration + 1
        return msg

    def to_dict(self) -> JsonDict:
        return {
            "type": self.TYPE,
            "v": 1,
            "chain_id": self.chain_id,
            "iteration": self.iteration,
            "chain_key": b64e(self.chain_key),
            "signing_seed": b64e(P.ed25519_seed(self.signing_key)),
        }

    @classmethod
    def from_dict(cls, d: Any) -> OutboundSenderKey:
        check_version(d, cls.TYPE, cls.VERSIONS)
        return cls(
            get_int(d, "chain_id"),
            get_int(d, "iteration"),
            b64d(d.get("chain_key"), length=32, field="chain_key"),
            P.load_ed25519_private(b64d(d.get("signing_seed"), length=32, field="signing_seed")),
        )


class InboundSenderKey:
    """A receiving chain for one (sender user, sender device, chain id)."""

    TYPE = "inbound_sender_key"
    VERSIONS = (1,)

    def __init__(
        self,
        chain_id: int,
        iteration: int,
        chain_key: bytes,
        signing_key: bytes,
        skipped: OrderedDict[int, bytes] | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.iteration = iteration
        self.chain_key = chain_key
        self.signing_key = IdentityPublicKey(signing_key)
        self.skipped: OrderedDict[int, bytes] = skipped if skipped is not None else OrderedDict()

    @classmethod
    def from_distribution(cls, dist: SenderKeyDistribution) -> InboundSenderKey:
        return cls(dist.chain_id, dist.iteration, dist.chain_key, dist.signing_key)

    def decrypt(self, message: SenderKeyMessage | bytes, associated_data: bytes = b"") -> bytes:
        """Verify, then decrypt (commit-on-success).

        Raises :class:`InvalidSignature` (checked first), :class:`InvalidHeader`
        (other chain), :class:`DuplicateMessage`, :class:`TooManySkippedMessages`
        or :class:`DecryptionFailed`; the state is unchanged in every case.
        """
        if isinstance(message, bytes):
            message = SenderKeyMessage.from_bytes(message)
        self.signing_key.verify(message.signature, message.signed_part)
        if message.chain_id != self.chain_id:
            raise InvalidHeader("message belongs to another sender chain")
        aad = message.header + associated_data
        it = message.iteration
        if it < self.iteration:
            seed = self.skipped.get(it)
            if seed is None:
                raise DuplicateMessage(f"iteration {it} already used or discarded")
            key, nonce = sender_message_key(seed)
            plaintext = P.aes_gcm_decrypt(key, nonce, message.ciphertext, aad)
            del self.skipped[it]
            return plaintext
        if it - self.iteration > MAX_SKIP:
            raise TooManySkippedMessages(f"would skip {it - self.iteration} > {MAX_SKIP} keys")
        skipped = OrderedDict(self.skipped)
        ck = self.chain_key
        for i in range(self.iteration, it):
            ck, seed = sender_chain_step(ck)
            skipped[i] = seed
            while len(skipped) > MAX_STORED_SKIPPED:
                skipped.popitem(last=False)
        ck, seed = sender_chain_step(ck)
        key, nonce = sender_message_key(seed)
        plaintext = P.aes_gcm_decrypt(key, nonce, message.ciphertext, aad)
        self.chain_key, self.iteration, self.skipped = ck, it + 1, skipped  # commit
        return plaintext

    def to_dict(self) -> JsonDict:
        return {
            "type": self.TYPE,
            "v": 1,
            "chain_id": self.chain_id,
            "iteration": self.iteration,
            "chain_key": b64e(self.chain_key),
            "signing_key": self.signing_key.to_b64(),
            "skipped": [[i, b64e(s)] for i, s in self.skipped.items()],
        }

    @classmethod
    def from_dict(cls, d: Any) -> InboundSenderKey:
        check_version(d, cls.TYPE, cls.VERSIONS)
        skipped: OrderedDict[int, bytes] = OrderedDict()
        for item in get_list(d, "skipped"):
            if not isinstance(item, list) or len(item) != 2 or not isinstance(item[0], int):
                raise InvalidHeader("inbound_sender_key: malformed skipped key")
            skipped[item[0]] = b64d(item[1], length=32)
        return cls(
            get_int(d, "chain_id"),
            get_int(d, "iteration", hi=2**32),
            b64d(d.get("chain_key"), length=32, field="chain_key"),
            b64d(d.get("signing_key"), length=32, field="signing_key"),
            skipped,
        )

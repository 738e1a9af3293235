"""End-to-end encryption state machine (sans-I/O): sessions, sender keys, message keys.

Algorithms (all under ``im.parley.*``; see ``docs`` in :mod:`client_tk.core`):

``im.parley.olm.v1`` (pairwise, direct chats and to-device control messages)::

    {"algorithm": "im.parley.olm.v1", "sender_key": <identity key b64>,
     "sender_device": "DEV",
     "ciphertext": {"<user>|<device>": <common.crypto.session wire message>, ...},
     # room events only:
     "body": <b64 nonce || AES-256-GCM(K, payload, aad=room_id)>,
     "self": <b64 encrypt_local(history key, K, context=room_id)>}

  Each device's ciphertext is a Double Ratchet message (X3DH pre-key message
  until the peer answers) whose plaintext is a JSON *envelope*
  ``{"type", "content", "sender", "sender_device", "recipient",
  "recipient_device"}`` — the binding fields stop a server from replaying one
  device's ciphertext to another.  In room events ``type`` is
  ``im.parley.message_key`` and ``content`` ``{"room_id", "key": <b64 K>}``.

``im.parley.sender_key.v1`` (groups)::

    {"algorithm": "im.parley.sender_key.v1", "sender_key": ..., "sender_device": ...,
     "chain_id": <int>, "ciphertext": <b64 SenderKeyMessage(K, ad=room_id)>,
     "body": ..., "self": ...}

  The sender key itself travels as a to-device ``m.room.encrypted`` olm
  message of type ``im.parley.sender_key`` with content ``{"room_id",
  "distribution": <b64 SenderKeyDistribution>}``.

Each message body is encrypted under a fresh 32-byte key ``K``; ``self``
copies are no longer made (own devices get ``K`` over their own sessions) and
the key backup is opt-in (:mod:`client_tk.core.backup`).  ``identity`` here is
this device's own identity key (certified by the account key, see
:mod:`client_tk.core.keys`).  A session *record* per peer device keeps up to
:data:`MAX_SESSIONS` sessions, the active one first: when both sides start a
session at once, each keeps the other's for decryption and the one that last
decrypted becomes active, so they converge.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from client_tk.core.keys import OTK_ALGORITHM, SPK_FIELD, KeyManager
from client_tk.core.store import LocalStore
from common.canonical_json import unpadded_b64decode, unpadded_b64encode
from common.crypto import (
    CryptoError,
    DuplicateMessage,
    IdentityKeyPair,
    IdentityPublicKey,
    InboundSenderKey,
    OutboundSenderKey,
    PQPreKeyBundle,
    PreKeyBundle,
    PreKeyMessage,
    SenderKeyDistribution,
    SenderKeyMessage,
    Session,
    choose_handshake,
    decode_message,
    encode_message,
)
from common.crypto import primitives as P
from common.crypto.errors import InvalidSignature

JsonDict = dict[str, Any]
OLM = "im.parley.olm.v1"
SENDER_KEY = "im.parley.sender_key.v1"
MESSAGE_KEY_TYPE = "im.parley.message_key"
SENDER_KEY_TYPE = "im.parley.sender_key"
MAX_SESSIONS = 5


class E2EError(Exception):
    """A message could not be decrypted or verified (reason in the text)."""


class Duplicate(E2EError):
    """Already decrypted before (a replayed batch after a crash)."""


@dataclass(frozen=True)
class DeviceInfo:
    """A peer device, from verified ``/keys/query`` device keys."""

    user_id: str
    device_id: str
    identity: IdentityPublicKey
    keys: JsonDict

    @property
    def key(self) -> str:
        return f"{self.user_id}|{self.device_id}"


def parse_device_keys(obj: Any, user_id: str, device_id: str) -> DeviceInfo | None:
    """Verify a device keys object (self-signature, ids); None if unusable."""
    if not isinstance(obj, dict) or obj.get("user_id") != user_id or obj.get("device_id") != device_id:
        return None
    keys = obj.get("keys")
    if not isinstance(keys, dict) or not isinstance(obj.get(SPK_FIELD), dict):
        return None
    try:
        identity = IdentityPublicKey.from_b64(keys.get(f"ed25519:{device_id}"))
        identity.verify_json(obj, user_id, device_id)
    except (CryptoError, ValueError):
        return None
    return DeviceInfo(user_id, device_id, identity, obj)


def b64(data: bytes) -> str:
    return unpadded_b64encode(data)


def unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise E2EError("expected base64 text")
    try:
        return unpadded_b64decode(text)
    except (ValueError, base64.binascii.Error) as exc:  # type: ignore[attr-defined]
        raise E2EError("bad base64") from exc


def seal_body(key: bytes, payload: JsonDict, room_id: str) -> str:
    nonce = P.random_bytes(P.NONCE_LEN)
    data = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return b64(nonce + P.aes_gcm_encrypt(key, nonce, data, room_id.encode("utf-8")))


def open_body(key: bytes, body: Any, room_id: str) -> JsonDict:
    raw = unb64(body)
    try:
        data = P.aes_gcm_decrypt(key, raw[:P.NONCE_LEN], raw[P.NONCE_LEN:], room_id.encode("utf-8"))
        payload = json.loads(data)
    except (CryptoError, ValueError) as exc:
        raise E2EError(f"message body does not decrypt: {exc}") from exc
    if not isinstance(payload, dict):
        raise E2EError("message body is not an object")
    return payload


class CryptoManager:
    """Sessions and sender keys of one device; all state staged in the store."""

    def __init__(self, store: LocalStore, keys: KeyManager) -> None:
        self.store = store
        self.keys = keys
        self.user_id = keys.user_id
        self.device_id = keys.device_id
        self.identity: IdentityKeyPair = keys.identity
        self._records: dict[str, list[Session]] = {}

    def forget_uncommitted(self) -> None:
        """Drop cached sessions (after a rolled-back batch they may be ahead of the store)."""
        self._records.clear()

    # ------------------------------------------------------------ sessions
    def _record(self, peer: str) -> list[Session]:
        record = self._records.get(peer)
        if record is None:
            stored = self.store.get("sessions", peer)
            record = [Session.from_dict(s) for s in stored["sessions"]] if stored else []
            self._records[peer] = record
        return record

    def _save_record(self, peer: str) -> None:
        record = self._records[peer][:MAX_SESSIONS]
        self._records[peer] = record
        if record:
            self.store.put("sessions", peer, {"sessions": [s.to_dict() for s in record]})
        else:
            self.store.delete("sessions", peer)

    def has_session(self, user_id: str, device_id: str) -> bool:
        return bool(self._record(f"{user_id}|{device_id}"))

    def start_session(self, device: DeviceInfo, one_time_key: JsonDict | None,
                      kem_key: JsonDict | None = None) -> None:
        """PQXDH (with the claimed KEM pre-key) or X3DH: the new session becomes active.

        A device whose keys advertise PQXDH is never talked to without a valid KEM
        key (``choose_handshake`` raises :class:`DowngradeRefused`, an :class:`E2EError` here)."""
        bundle: JsonDict = {
            "type": "prekey_bundle", "v": 1, "user_id": device.user_id,
            "device_id": device.device_id, "identity_key": device.identity.to_b64(),
            "signed_prekey": device.keys[SPK_FIELD],
            **({"one_time_prekey": one_time_key} if one_time_key is not None else {}),
        }
        if kem_key is not None:
            bundle.update(type=PQPreKeyBundle.TYPE, kem_prekey=kem_key)
        try:
            if choose_handshake(device.keys, bundle) == "pqxdh":
                session = Session.initiate_pqxdh(self.identity, PQPreKeyBundle.from_dict(bundle))
            else:
                session = Session.initiate(self.identity, PreKeyBundle.from_dict(bundle))
        except CryptoError as exc:
            raise E2EError(f"no session with {device.key}: {exc}") from exc
        record = self._record(device.key)
        record.insert(0, session)
        self._save_record(device.key)

    def reset_session(self, user_id: str, device_id: str) -> None:
        peer = f"{user_id}|{device_id}"
        self._records[peer] = []
        self._save_record(peer)

    def encrypt_for_devices(self, devices: list[DeviceInfo], kind: str, content: JsonDict) -> JsonDict:
        """Olm ciphertext map for ``devices`` (each must have a session)."""
        out: JsonDict = {}
        for device in devices:
            record = self._record(device.key)
            if not record:
                raise E2EError(f"no session with {device.key}")
            envelope = {"type": kind, "content": content, "sender": self.user_id,
                        "sender_device": self.device_id, "recipient": device.user_id,
                        "recipient_device": device.device_id}
            wire = record[0].encrypt(json.dumps(envelope, separators=(",", ":")).encode())
            out[device.key] = encode_message(wire)
            self._save_record(device.key)
        return out

    def olm_content(self, ciphertext: JsonDict) -> JsonDict:
        return {"algorithm": OLM, "sender_key": self.identity.public.to_b64(),
                "sender_device": self.device_id, "ciphertext": ciphertext}

    def decrypt_olm(self, sender: str, content: JsonDict,
                    known_identity: IdentityPublicKey | None) -> tuple[str, JsonDict]:
        """Decrypt our ciphertext of an olm content; returns ``(type, content)``.

        Raises :class:`Duplicate` for an already-decrypted message and
        :class:`E2EError` otherwise."""
        sender_device = content.get("sender_device")
        ciphertexts = content.get("ciphertext")
        if not isinstance(sender_device, str) or not isinstance(ciphertexts, dict):
            raise E2EError("malformed olm content")
        mine = ciphertexts.get(f"{self.user_id}|{self.device_id}")
        if mine is None:
            raise E2EError("no ciphertext for this device")
        try:
            message = decode_message(mine)
        except CryptoError as exc:
            raise E2EError(f"malformed olm message: {exc}") from exc
        peer = f"{sender}|{sender_device}"
        record = self._record(peer)
        plaintext: bytes | None = None
        duplicate = False
        for index, session in enumerate(record):
            try:
                plaintext = session.decrypt(message)
            except DuplicateMessage:
                duplicate = True
                continue
            except CryptoError:
                continue
            record.insert(0, record.pop(index))
            break
        if plaintext is None and isinstance(message, PreKeyMessage) and not duplicate:
            plaintext = self._accept(peer, sender, sender_device, message, known_identity)
        if plaintext is None:
            if duplicate:
                raise Duplicate(f"duplicate message from {peer}")
            raise E2EError(f"no session with {peer} decrypts this message")
        self._save_record(peer)
        try:
            envelope = json.loads(plaintext)
        except ValueError as exc:
            raise E2EError("olm payload is not JSON") from exc
        if not (isinstance(envelope, dict) and envelope.get("sender") == sender
                and envelope.get("sender_device") == sender_device
                and envelope.get("recipient") == self.user_id
                and envelope.get("recipient_device") == self.device_id
                and isinstance(envelope.get("type"), str) and isinstance(envelope.get("content"), dict)):
            raise E2EError("olm payload is not bound to this sender and device")
        return envelope["type"], envelope["content"]

    def _accept(self, peer: str, sender: str, sender_device: str, message: PreKeyMessage,
                known_identity: IdentityPublicKey | None) -> bytes:
        try:
            result = Session.accept(self.identity, message, sender, sender_device, self.keys.spks,
                                    self.keys.otks.get, self.keys.kem.lookup, require_pq=True)
        except CryptoError as exc:
            raise E2EError(f"pre-key message from {peer} does not open: {exc}") from exc
        if known_identity is not None and result.session.peer_identity != known_identity:
            raise E2EError(f"{peer} used an identity key that is not its published one")
        if result.one_time_prekey_id is not None:
            self.keys.consume_otk(self.store, result.one_time_prekey_id)
        if result.kem_prekey_id is not None:
            self.keys.kem.consume(self.store, result.kem_prekey_id, bool(result.kem_last_resort))
        self._record(peer).insert(0, result.session)
        return result.plaintext

    # --------------------------------------------------------- sender keys
    def outbound(self, room_id: str) -> JsonDict | None:
        return self.store.get("sk_out", room_id)

    def new_outbound(self, room_id: str, members: list[str]) -> OutboundSenderKey:
        key = OutboundSenderKey.create()
        self.store.put("sk_out", room_id, {"key": key.to_dict(), "shared_with": [], "members": sorted(members)})
        # Our own other devices learn it like everyone.  This device keeps no inbound
        # copy: one would open every message of the chain from its start (standing
        # escrow); it keeps the plaintext of what it sent in its message cache instead.
        return key

    def mark_shared(self, room_id: str, device_keys: list[str]) -> None:
        record = self.store.get("sk_out", room_id)
        assert record is not None
        shared = sorted(set(record["shared_with"]) | set(device_keys))
        self.store.put("sk_out", room_id, {**record, "shared_with": shared})

    def distribution(self, room_id: str) -> JsonDict:
        record = self.store.get("sk_out", room_id)
        assert record is not None
        key = OutboundSenderKey.from_dict(record["key"])
        return {"room_id": room_id, "distribution": b64(key.distribution().to_bytes())}

    def discard_outbound(self, room_id: str) -> None:
        self.store.delete("sk_out", room_id)

    def group_encrypt(self, room_id: str, message_key: bytes) -> JsonDict:
        record = self.store.get("sk_out", room_id)
        assert record is not None
        key = OutboundSenderKey.from_dict(record["key"])
        msg = key.encrypt(message_key, room_id.encode("utf-8"))
        self.store.put("sk_out", room_id, {**record, "key": key.to_dict()})
        return {"algorithm": SENDER_KEY, "sender_key": self.identity.public.to_b64(),
                "sender_device": self.device_id, "chain_id": msg.chain_id,
                "ciphertext": b64(msg.to_bytes())}

    def _store_inbound(self, room_id: str, sender: str, device: str, dist: SenderKeyDistribution) -> None:
        name = f"{room_id}|{sender}|{device}|{dist.chain_id}"
        if self.store.get("sk_in", name) is None:  # never rewind a chain we already follow
            self.store.put("sk_in", name, InboundSenderKey.from_distribution(dist).to_dict())

    def receive_sender_key(self, sender: str, sender_device: str, content: JsonDict) -> str:
        room_id = content.get("room_id")
        if not isinstance(room_id, str):
            raise E2EError("sender key without room")
        try:
            dist = SenderKeyDistribution.from_bytes(unb64(content.get("distribution")))
        except CryptoError as exc:
            raise E2EError(f"malformed sender key: {exc}") from exc
        self._store_inbound(room_id, sender, sender_device, dist)
        return room_id

    def group_decrypt(self, room_id: str, sender: str, content: JsonDict) -> bytes:
        device, chain = content.get("sender_device"), content.get("chain_id")
        name = f"{room_id}|{sender}|{device}|{chain}"
        stored = self.store.get("sk_in", name)
        if stored is None:
            raise E2EError(f"no sender key {chain} from {sender}|{device} for this room")
        inbound = InboundSenderKey.from_dict(stored)
        try:
            key = inbound.decrypt(unb64(content.get("ciphertext")), room_id.encode("utf-8"))
        except DuplicateMessage as exc:
            raise Duplicate(str(exc)) from exc
        except (CryptoError, InvalidSignature) as exc:
            raise E2EError(f"group message does not decrypt: {exc}") from exc
        self.store.put("sk_in", name, inbound.to_dict())
        return key


def one_time_key_from_claim(claimed: Any, algorithm: str = OTK_ALGORITHM) -> JsonDict | None:
    """The key object of ``algorithm`` from a ``/keys/claim`` device entry."""
    if not isinstance(claimed, dict):
        return None
    for name, obj in claimed.items():
        if isinstance(name, str) and name.startswith(algorithm + ":") and isinstance(obj, dict):
            return obj
    return None


def parse_message_key(content: JsonDict, room_id: str) -> bytes:
    if content.get("room_id") != room_id:
        raise E2EError("message key is for another room")
    key = unb64(content.get("key"))
    if len(key) != 32:
        raise E2EError("message key has the wrong length")
    return key


__all__ = [
    "OLM", "SENDER_KEY", "CryptoManager", "DeviceInfo", "Duplicate", "E2EError",
    "open_body", "parse_device_keys", "seal_body", "one_time_key_from_claim", "SenderKeyMessage",
]

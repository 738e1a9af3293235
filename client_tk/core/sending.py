"""Encrypting one message for a room: the recipient set and session setup (sans-I/O).

This is the seam E2EE changes build on.  A send runs in three steps, each
pure except for the I/O it *reports*; the driver (:mod:`client_tk.core.engine`)
performs that I/O outside any lock and feeds the answers back:

1. :func:`recipients` — the users whose devices must read the message now
   (joined and invited members, plus our own other devices).  The driver asks
   :meth:`DeviceDirectory.to_query` which of them need a ``/keys/query``.
2. :func:`claims_needed` / :func:`claim_body` — devices without a pairwise
   session; the driver sends ``/keys/claim`` and :func:`start_sessions` runs
   X3DH with what came back.
3. :func:`encrypt` — a fresh message key, wrapped per device (direct chats)
   or under the room's sender key (groups, whose distribution becomes a
   to-device message to put in the outbox *before* the event).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from client_tk.core.crypto import (
    MESSAGE_KEY_TYPE,
    SENDER_KEY_TYPE,
    CryptoManager,
    DeviceInfo,
    E2EError,
    b64,
    one_time_key_from_claim,
    seal_body,
)
from client_tk.core.keys import OTK_ALGORITHM
from client_tk.core.sync import RoomView
from common.crypto import primitives as P
from common.crypto.kem_prekeys import KEM_KEY_ALGORITHM
from common.crypto.trust import delivery_report

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]


@dataclass(frozen=True)
class Encrypted:
    content: JsonDict  # the m.room.encrypted content of the event
    to_device: JsonDict | None  # sender-key distribution: {user: {device: content}}, sent first
    unreachable: list[str]  # devices meant to read it that have no session (shown on the message)


def recipients(room: RoomView, own_user: str) -> list[str]:
    return sorted(set(room.recipients) | {own_user})


def claims_needed(crypto: CryptoManager, devices: list[DeviceInfo]) -> list[DeviceInfo]:
    return [d for d in devices if not crypto.has_session(d.user_id, d.device_id)]


def claim_body(devices: list[DeviceInfo], algorithm: str = OTK_ALGORITHM) -> JsonDict:
    """``/keys/claim`` for one key per device: the X25519 one-time key, or (a second
    request, :data:`KEM_KEY_ALGORITHM`) the KEM pre-key -- one-time, else last-resort."""
    request: dict[str, dict[str, str]] = {}
    for d in devices:
        request.setdefault(d.user_id, {})[d.device_id] = algorithm
    return {"one_time_keys": request}


def _claimed(body: JsonDict | None, d: DeviceInfo, algorithm: str) -> JsonDict | None:
    claimed = body.get("one_time_keys") if isinstance(body, dict) else None
    per_user = claimed.get(d.user_id) if isinstance(claimed, dict) else None
    found = per_user.get(d.device_id) if isinstance(per_user, dict) else None
    return one_time_key_from_claim(found, algorithm)


def start_sessions(crypto: CryptoManager, devices: list[DeviceInfo], body: JsonDict,
                   kem_body: JsonDict | None = None) -> list[str]:
    """PQXDH (or X3DH with a device that publishes no KEM key) with each device's claimed
    keys; returns the devices no session could be started with (e.g. a downgrade refused)."""
    failed = []
    for d in devices:
        if crypto.has_session(d.user_id, d.device_id):
            continue
        try:
            crypto.start_session(d, _claimed(body, d, OTK_ALGORITHM),
                                 _claimed(kem_body, d, KEM_KEY_ALGORITHM))
        except E2EError as exc:
            logger.warning("cannot start a session with %s: %s", d.key, exc)
            failed.append(d.key)
    return failed


def encrypt(crypto: CryptoManager, room: RoomView, own_user: str, devices: list[DeviceInfo],
            payload: JsonDict) -> Encrypted:
    """Stage the ratchet / sender-key steps of one message and return what to send."""
    intended = [d.key for d in devices]
    devices = [d for d in devices if crypto.has_session(d.user_id, d.device_id)]
    key = P.random_bytes(32)
    to_device: JsonDict | None = None
    if room.is_direct:
        ciphertext = crypto.encrypt_for_devices(
            devices, MESSAGE_KEY_TYPE, {"room_id": room.room_id, "key": b64(key)})
        content = crypto.olm_content(ciphertext)
    else:
        to_device = _share_sender_key(crypto, room, own_user, devices)
        content = crypto.group_encrypt(room.room_id, key)
    relates = payload.get("m.relates_to")
    if isinstance(relates, dict):  # in clear, as Matrix has it (the server aggregates relations by it)
        content["m.relates_to"] = relates
        payload = {k: v for k, v in payload.items() if k != "m.relates_to"}
    content["body"] = seal_body(key, payload, room.room_id)
    # No copy for this device: it keeps the plaintext (outbox, then message cache), and
    # our other devices read the key through their own pairwise sessions / sender key.
    return Encrypted(content, to_device, delivery_report(intended, [d.key for d in devices]))


def _share_sender_key(crypto: CryptoManager, room: RoomView, own_user: str,
                      devices: list[DeviceInfo]) -> JsonDict | None:
    """Rotate the sender key when the membership changed; distribute it to new devices."""
    record = crypto.outbound(room.room_id)
    current = {d.key for d in devices}
    members = recipients(room, own_user)
    if record is None or record["members"] != members or not set(record["shared_with"]) <= current:
        crypto.new_outbound(room.room_id, members)
        record = crypto.outbound(room.room_id)
        assert record is not None
    todo = [d for d in devices if d.key not in set(record["shared_with"])]
    if not todo:
        return None
    ciphertext = crypto.encrypt_for_devices(todo, SENDER_KEY_TYPE, crypto.distribution(room.room_id))
    messages: dict[str, dict[str, JsonDict]] = {}
    for d in todo:
        messages.setdefault(d.user_id, {})[d.device_id] = crypto.olm_content({d.key: ciphertext[d.key]})
    crypto.mark_shared(room.room_id, [d.key for d in todo])
    return messages

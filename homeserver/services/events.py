"""Room events as PDUs of every room version: hashing, signing, ids, client format.

Pure functions, no I/O.  The rules follow the Matrix specification; what
differs per version comes from ``room_versions.py``:

* content hash: SHA-256 of the canonical JSON of the event without
  ``unsigned``, ``signatures`` and ``hashes`` (``hashes.sha256``, unpadded
  standard base64);
* reference hash: SHA-256 of the canonical JSON of the *redacted* event
  without ``signatures`` and ``unsigned``; the event id is ``$`` + its
  unpadded base64 (v3) or URL-safe base64 (v4 and later).  Versions 1 and 2
  carry a random ``$local:server`` id inside the PDU instead, and refer to
  other events as ``[event_id, {"sha256": hash}]`` pairs;
* version 12: the ``m.room.create`` event has no ``room_id``; the room id is
  its event id with the ``!`` sigil;
* signatures: the server signs the redacted event (signing JSON appendix);
* redaction: ``redaction.py``.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.canonical_json import (
    encode_canonical_json,
    sign_json,
    unpadded_b64encode,
    verify_signed_json,
)
from homeserver.services.redaction import redact_content, redact_event
from homeserver.services.room_versions import DEFAULT_ROOM_VERSION, ROOM_VERSIONS, RoomVersion

JsonDict = dict[str, Any]

ROOM_VERSION = DEFAULT_ROOM_VERSION
SUPPORTED_ROOM_VERSIONS = tuple(ROOM_VERSIONS)


def _rules(version: RoomVersion | str) -> RoomVersion:
    return ROOM_VERSIONS[version] if isinstance(version, str) else version


def compute_content_hash(event: JsonDict) -> str:
    stripped = {k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")}
    digest = hashlib.sha256(encode_canonical_json(stripped)).digest()
    return unpadded_b64encode(digest)


def compute_reference_hash(event: JsonDict, room_version: RoomVersion | str = ROOM_VERSION) -> bytes:
    rules = _rules(room_version)
    redacted = redact_event(event, rules)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    if rules.event_format != "v1":
        redacted.pop("event_id", None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(event: JsonDict, room_version: RoomVersion | str = ROOM_VERSION) -> str:
    """The id of ``event``: its reference hash, or (v1/v2) the id it carries."""
    rules = _rules(room_version)
    if rules.event_id_scheme == "server":
        event_id = event.get("event_id")
        if not isinstance(event_id, str):
            raise ValueError("a v1/v2 event carries its event_id")
        return event_id
    digest = compute_reference_hash(event, rules)
    if rules.event_id_scheme == "b64":
        return "$" + unpadded_b64encode(digest)
    return "$" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def room_id_for_create(create_event_id: str) -> str:
    """Room version 12: the room id is the create event's id with the ``!`` sigil."""
    return "!" + create_event_id[1:]


def hash_and_sign(
    event: JsonDict, server_name: str, key_version: str, key: Ed25519PrivateKey,
    room_version: RoomVersion | str = ROOM_VERSION,
) -> JsonDict:
    """Add ``hashes`` and the server's signature to ``event`` (in place) and return it."""
    event["hashes"] = {"sha256": compute_content_hash(event)}
    redacted = redact_event(event, _rules(room_version))
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    sign_json(redacted, server_name, key_version, key)
    signature = redacted["signatures"][server_name][f"ed25519:{key_version}"]
    event.setdefault("signatures", {}).setdefault(server_name, {})[f"ed25519:{key_version}"] = signature
    return event


def verify_event_signature(
    event: JsonDict, server_name: str, key_version: str, public_key: Ed25519PublicKey,
    room_version: RoomVersion | str = ROOM_VERSION,
) -> bool:
    redacted = redact_event(event, _rules(room_version))
    redacted.pop("unsigned", None)
    return verify_signed_json(redacted, server_name, key_version, public_key)


def content_hash_matches(event: JsonDict) -> bool:
    hashes = event.get("hashes")
    return isinstance(hashes, dict) and hashes.get("sha256") == compute_content_hash(event)


def reference_ids(refs: Any) -> list[str]:
    """Event ids of ``prev_events``/``auth_events`` in either format."""
    out: list[str] = []
    for ref in refs if isinstance(refs, list) else []:
        if isinstance(ref, str):
            out.append(ref)
        elif isinstance(ref, list) and ref and isinstance(ref[0], str):
            out.append(ref[0])
    return out


def redacts_of(pdu: JsonDict) -> str | None:
    """The event a redaction redacts (``content.redacts`` from v11, top level before)."""
    content = pdu.get("content")
    value = content.get("redacts") if isinstance(content, dict) else None
    if not isinstance(value, str):
        value = pdu.get("redacts")
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class EventSpec:
    """What a caller wants to send; the writer fills in the DAG fields."""

    type: str
    sender: str
    content: JsonDict
    state_key: str | None = None

    @property
    def is_state(self) -> bool:
        return self.state_key is not None


def build_pdu(
    spec: EventSpec,
    room_id: str,
    prev_events: list[str],
    auth_events: list[str],
    depth: int,
    origin_server_ts: int,
    server_name: str,
    key_version: str,
    key: Ed25519PrivateKey,
    room_version: RoomVersion | str = ROOM_VERSION,
    hashes_of: Mapping[str, JsonDict] | None = None,
) -> tuple[str, JsonDict]:
    """A signed PDU of the room's version and its event id.

    ``hashes_of`` gives the ``hashes`` of the referenced events (versions 1
    and 2 only).  For a version-12 ``m.room.create`` ``room_id`` is ignored.
    """
    rules = _rules(room_version)
    pdu: JsonDict = {
        "auth_events": list(auth_events),
        "content": copy.deepcopy(spec.content),
        "depth": depth,
        "origin_server_ts": origin_server_ts,
        "prev_events": list(prev_events),
        "room_id": room_id,
        "sender": spec.sender,
        "type": spec.type,
    }
    if spec.state_key is not None:
        pdu["state_key"] = spec.state_key
    if spec.type == "m.room.create" and rules.room_id_from_create:
        del pdu["room_id"]
    if spec.type == "m.room.redaction" and not rules.redacts_in_content:
        redacts = spec.content.get("redacts")
        if isinstance(redacts, str):
            pdu["redacts"] = redacts
    if spec.type == "m.room.create" and not rules.creator_is_sender:
        pdu["content"].setdefault("creator", spec.sender)
    if rules.event_format == "v1":
        hashes = hashes_of or {}

        def ref(event_id: str) -> list[Any]:
            found = hashes.get(event_id) or {}
            return [event_id, {"sha256": found.get("sha256", "")}]

        pdu["prev_events"] = [ref(e) for e in prev_events]
        pdu["auth_events"] = [ref(e) for e in auth_events]
        pdu["event_id"] = f"${secrets.token_urlsafe(18)}:{server_name}"
        pdu["origin"] = server_name
    hash_and_sign(pdu, server_name, key_version, key, rules)
    return compute_event_id(pdu, rules), pdu


def client_event(
    pdu: JsonDict,
    event_id: str,
    now_ms: int,
    unsigned: JsonDict | None = None,
    room_id: str | None = None,
) -> JsonDict:
    """The ClientEvent shape of a stored PDU."""
    out: JsonDict = {
        "event_id": event_id,
        "type": pdu["type"],
        "sender": pdu["sender"],
        "content": pdu.get("content", {}),
        "origin_server_ts": pdu["origin_server_ts"],
        "room_id": pdu.get("room_id", room_id or room_id_for_create(event_id)),
    }
    if "state_key" in pdu:
        out["state_key"] = pdu["state_key"]
    if pdu["type"] == "m.room.redaction":
        redacts = redacts_of(pdu)
        if isinstance(redacts, str):
            # v11 moved ``redacts`` into content; clients read either place.
            out["redacts"] = redacts
            if "redacts" not in out["content"]:
                out["content"] = {**out["content"], "redacts": redacts}
    extra: JsonDict = {"age": max(0, now_ms - int(pdu["origin_server_ts"]))}
    if unsigned:
        extra.update(unsigned)
    out["unsigned"] = extra
    return out


def stripped_state(pdu: JsonDict) -> JsonDict:
    """The stripped-state form used in invite state."""
    return {
        "type": pdu["type"],
        "state_key": pdu.get("state_key", ""),
        "sender": pdu["sender"],
        "content": pdu.get("content", {}),
    }


__all__ = [
    "EventSpec", "build_pdu", "client_event", "compute_content_hash", "compute_event_id",
    "compute_reference_hash", "content_hash_matches", "hash_and_sign", "redact_content", "redact_event",
    "redacts_of", "reference_ids", "room_id_for_create", "stripped_state", "verify_event_signature",
    "ROOM_VERSION", "SUPPORTED_ROOM_VERSIONS",
]

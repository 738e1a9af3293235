"""Room events as room-version-11 PDUs: hashing, signing, ids, redaction, client format.

Pure functions, no I/O.  The rules follow the Matrix specification:

* content hash: SHA-256 of the canonical JSON of the event without
  ``unsigned``, ``signatures`` and ``hashes`` (``hashes.sha256``, unpadded
  standard base64);
* reference hash: SHA-256 of the canonical JSON of the *redacted* event
  without ``signatures`` and ``unsigned``; the event id is ``$`` + its
  unpadded URL-safe base64 (room versions 4 and later);
* signatures: the server signs the redacted event (signing JSON appendix);
* redaction: the room-version-11 algorithm (older versions only for the
  specification's test vectors).
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from common.canonical_json import (
    encode_canonical_json,
    sign_json,
    unpadded_b64encode,
    verify_signed_json,
)

JsonDict = dict[str, Any]

ROOM_VERSION = "11"
SUPPORTED_ROOM_VERSIONS = ("11",)

# Top-level keys the v11 redaction algorithm keeps.
_V11_TOP_LEVEL = frozenset(
    {
        "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
        "signatures", "depth", "prev_events", "auth_events", "origin_server_ts",
    }
)
# Before v11 these were protected as well.
_LEGACY_TOP_LEVEL = _V11_TOP_LEVEL | {"origin", "membership", "prev_state"}


def _kept_content_keys(event_type: str, room_version: str) -> frozenset[str] | None:
    """Content keys kept by redaction; None means "keep all"."""
    v11 = room_version == "11"
    if event_type == "m.room.member":
        keys = {"membership"}
        if v11:
            keys |= {"join_authorised_via_users_server"}
        return frozenset(keys)
    if event_type == "m.room.create":
        return None if v11 else frozenset({"creator"})
    if event_type == "m.room.join_rules":
        return frozenset({"join_rule", "allow"} if v11 else {"join_rule"})
    if event_type == "m.room.power_levels":
        keys = {"ban", "events", "events_default", "kick", "redact", "state_default", "users",
                "users_default"}
        if v11:
            keys |= {"invite"}
        return frozenset(keys)
    if event_type == "m.room.history_visibility":
        return frozenset({"history_visibility"})
    if event_type == "m.room.redaction" and v11:
        return frozenset({"redacts"})
    return frozenset()


def redact_event(event: JsonDict, room_version: str = ROOM_VERSION) -> JsonDict:
    """The redacted form of ``event`` (a new dict; ``unsigned`` is dropped)."""
    top = _V11_TOP_LEVEL if room_version == "11" else _LEGACY_TOP_LEVEL
    out = {k: copy.deepcopy(v) for k, v in event.items() if k in top}
    content = event.get("content")
    content = content if isinstance(content, dict) else {}
    kept = _kept_content_keys(str(event.get("type", "")), room_version)
    if kept is None:
        new_content = copy.deepcopy(content)
    else:
        new_content = {k: copy.deepcopy(v) for k, v in content.items() if k in kept}
    if room_version == "11" and event.get("type") == "m.room.member":
        tpi = content.get("third_party_invite")
        if isinstance(tpi, dict) and "signed" in tpi:
            new_content["third_party_invite"] = {"signed": copy.deepcopy(tpi["signed"])}
    out["content"] = new_content
    return out


def redact_content(event_type: str, content: JsonDict, room_version: str = ROOM_VERSION) -> JsonDict:
    """Only the content part of the redaction algorithm."""
    return dict(redact_event({"type": event_type, "content": content}, room_version)["content"])


def compute_content_hash(event: JsonDict) -> str:
    stripped = {k: v for k, v in event.items() if k not in ("unsigned", "signatures", "hashes")}
    digest = hashlib.sha256(encode_canonical_json(stripped)).digest()
    return unpadded_b64encode(digest)


def compute_reference_hash(event: JsonDict, room_version: str = ROOM_VERSION) -> bytes:
    redacted = redact_event(event, room_version)
    redacted.pop("signatures", None)
    redacted.pop("unsigned", None)
    redacted.pop("event_id", None)
    return hashlib.sha256(encode_canonical_json(redacted)).digest()


def compute_event_id(event: JsonDict, room_version: str = ROOM_VERSION) -> str:
    digest = compute_reference_hash(event, room_version)
    return "$" + base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def hash_and_sign(
    event: JsonDict, server_name: str, key_version: str, key: Ed25519PrivateKey,
    room_version: str = ROOM_VERSION,
) -> JsonDict:
    """Add ``hashes`` and the server's signature to ``event`` (in place) and return it."""
    event["hashes"] = {"sha256": compute_content_hash(event)}
    redacted = redact_event(event, room_version)
    redacted.pop("signatures", None)
    sign_json(redacted, server_name, key_version, key)
    signature = redacted["signatures"][server_name][f"ed25519:{key_version}"]
    event.setdefault("signatures", {}).setdefault(server_name, {})[f"ed25519:{key_version}"] = signature
    return event


def verify_event_signature(
    event: JsonDict, server_name: str, key_version: str, public_key: Ed25519PublicKey,
    room_version: str = ROOM_VERSION,
) -> bool:
    redacted = redact_event(event, room_version)
    return verify_signed_json(redacted, server_name, key_version, public_key)


def content_hash_matches(event: JsonDict) -> bool:
    hashes = event.get("hashes")
    return isinstance(hashes, dict) and hashes.get("sha256") == compute_content_hash(event)


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
) -> tuple[str, JsonDict]:
    """A signed v11 PDU and its event id."""
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
    hash_and_sign(pdu, server_name, key_version, key)
    return compute_event_id(pdu), pdu


def client_event(
    pdu: JsonDict,
    event_id: str,
    now_ms: int,
    unsigned: JsonDict | None = None,
) -> JsonDict:
    """The ClientEvent shape of a stored PDU."""
    out: JsonDict = {
        "event_id": event_id,
        "type": pdu["type"],
        "sender": pdu["sender"],
        "content": pdu.get("content", {}),
        "origin_server_ts": pdu["origin_server_ts"],
        "room_id": pdu["room_id"],
    }
    if "state_key" in pdu:
        out["state_key"] = pdu["state_key"]
    if pdu["type"] == "m.room.redaction":
        redacts = pdu.get("content", {}).get("redacts")
        if isinstance(redacts, str):
            # v11 moved ``redacts`` into content; many clients still read the top level.
            out["redacts"] = redacts
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

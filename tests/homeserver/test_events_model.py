"""Pure event model: hashes, ids, signatures, redaction (v11) and the auth rules."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.canonical_json import unpadded_b64decode
from common.errors import MatrixError
from homeserver.services.event_auth import check_event_allowed, validate_power_levels_content
from homeserver.services.events import (
    EventSpec,
    build_pdu,
    compute_content_hash,
    compute_event_id,
    content_hash_matches,
    hash_and_sign,
    redact_event,
    verify_event_signature,
)

# The specification's cryptographic test vectors (appendix "Signing events").
SPEC_SEED = "YJDBA9Xnr2sVqXD9Vj7XVUnmFZcZrlw8Md7kMW+3XA1"


def spec_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(unpadded_b64decode(SPEC_SEED))


def minimal_event() -> dict:
    return {
        "room_id": "!x:domain", "sender": "@a:domain", "origin": "domain", "origin_server_ts": 1000000,
        "signatures": {}, "hashes": {}, "type": "X", "content": {}, "prev_events": [], "auth_events": [],
        "depth": 3, "unsigned": {"age_ts": 1000000},
    }


def test_content_hash_known_answer() -> None:
    assert compute_content_hash(minimal_event()) == "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    message = {
        "content": {"body": "Here is the message content"}, "event_id": "$0:domain", "origin": "domain",
        "origin_server_ts": 1000000, "type": "m.room.message", "room_id": "!r:domain", "sender": "@u:domain",
        "signatures": {}, "unsigned": {"age_ts": 1000000},
    }
    assert compute_content_hash(message) == "onLKD1bGljeBWQhWZ1kaP9SorVmRQNdN5aM2JYU2n/g"


def test_signature_known_answer_with_pre_v11_redaction() -> None:
    # The spec's vector was made under the pre-v11 redaction rules (origin kept).
    event = minimal_event()
    event["signatures"] = {}
    hash_and_sign(event, "domain", "1", spec_key(), room_version="5")
    assert event["hashes"]["sha256"] == "5jM4wQpv6lnBo7CLIghJuHdW+s2CMBJPUOGOC89ncos"
    assert event["signatures"]["domain"]["ed25519:1"] == (
        "KxwGjPSDEtvnFgU00fwFz+l6d2pJM6XBIaMEn81SXPTRl16AqLAYqfIReFGZlHi5KLjAWbOoMszkwsQma+lYAg"
    )
    assert verify_event_signature(event, "domain", "1", spec_key().public_key(), room_version="5")


def test_v11_redaction_rules() -> None:
    member = {"type": "m.room.member", "content": {"membership": "join", "displayname": "A",
                                                    "join_authorised_via_users_server": "@x:y"},
              "origin": "x", "membership": "join", "prev_state": [], "sender": "@a:x", "unsigned": {"a": 1}}
    red = redact_event(member)
    assert red["content"] == {"membership": "join", "join_authorised_via_users_server": "@x:y"}
    assert "origin" not in red and "membership" not in red and "prev_state" not in red and "unsigned" not in red
    create = {"type": "m.room.create", "content": {"room_version": "11", "m.federate": False, "x": 1}}
    assert redact_event(create)["content"] == create["content"]
    pl = {"type": "m.room.power_levels", "content": {"invite": 0, "users": {}, "notifications": {"room": 50}}}
    assert redact_event(pl)["content"] == {"invite": 0, "users": {}}
    redaction = {"type": "m.room.redaction", "content": {"redacts": "$e", "reason": "spam"}}
    assert redact_event(redaction)["content"] == {"redacts": "$e"}
    message = {"type": "m.room.message", "content": {"body": "secret"}}
    assert redact_event(message)["content"] == {}
    jr = {"type": "m.room.join_rules", "content": {"join_rule": "restricted", "allow": [], "x": 1}}
    assert redact_event(jr)["content"] == {"join_rule": "restricted", "allow": []}


def test_event_id_is_reference_hash_and_stable_under_redaction() -> None:
    key = Ed25519PrivateKey.generate()
    spec = EventSpec("m.room.message", "@a:hs", {"body": "hello"})
    event_id, pdu = build_pdu(spec, "!r:hs", ["$p"], ["$a"], 5, 1234, "hs", "v1", key)
    assert event_id.startswith("$") and "=" not in event_id and "+" not in event_id and "/" not in event_id
    assert compute_event_id(pdu) == event_id
    assert content_hash_matches(pdu)
    assert verify_event_signature(pdu, "hs", "v1", key.public_key())
    # Redaction keeps the id and the signature valid.
    redacted = redact_event(pdu)
    assert compute_event_id(redacted) == event_id
    assert verify_event_signature(redacted, "hs", "v1", key.public_key())
    assert not content_hash_matches(redacted)
    tampered = dict(pdu, depth=6)
    assert compute_event_id(tampered) != event_id
    assert not verify_event_signature(tampered, "hs", "v1", key.public_key())


def _state(*events: dict) -> dict:
    return {(e["type"], e.get("state_key", "")): e for e in events}


def _ev(type_: str, sender: str, content: dict, state_key: str | None = None) -> dict:
    event = {"type": type_, "sender": sender, "content": content, "room_id": "!r:hs", "prev_events": ["$x"]}
    if state_key is not None:
        event["state_key"] = state_key
    return event


CREATE = _ev("m.room.create", "@c:hs", {"room_version": "11"}, "")
PL = _ev("m.room.power_levels", "@c:hs", {"users": {"@c:hs": 100}, "kick": 100, "invite": 0,
                                          "events": {"m.room.name": 100}, "state_default": 100, "ban": 100}, "")
JR = _ev("m.room.join_rules", "@c:hs", {"join_rule": "invite"}, "")


def member(user: str, membership: str, sender: str | None = None) -> dict:
    return _ev("m.room.member", sender or user, {"membership": membership}, user)


def test_auth_rules() -> None:
    base = _state(CREATE, PL, JR, member("@c:hs", "join"), member("@m:hs", "join"))
    # Creator may rename; a member may not.
    check_event_allowed(_ev("m.room.name", "@c:hs", {"name": "x"}, ""), base)
    with pytest.raises(MatrixError):
        check_event_allowed(_ev("m.room.name", "@m:hs", {"name": "x"}, ""), base)
    # Messages need membership.
    check_event_allowed(_ev("m.room.message", "@m:hs", {"body": "x"}), base)
    with pytest.raises(MatrixError):
        check_event_allowed(_ev("m.room.message", "@o:hs", {"body": "x"}), base)
    # Joining an invite-only room needs an invite.
    with pytest.raises(MatrixError):
        check_event_allowed(member("@o:hs", "join"), base)
    invited = dict(base)
    invited[("m.room.member", "@o:hs")] = member("@o:hs", "invite", "@m:hs")
    check_event_allowed(member("@o:hs", "join"), invited)
    # Only the creator kicks; nobody joins for someone else.
    check_event_allowed(member("@m:hs", "leave", "@c:hs"), base)
    with pytest.raises(MatrixError):
        check_event_allowed(member("@c:hs", "leave", "@m:hs"), base)
    with pytest.raises(MatrixError):
        check_event_allowed(member("@m:hs", "join", "@c:hs"), _state(CREATE, PL, JR, member("@c:hs", "join"),
                                                                     member("@m:hs", "invite")))
    # Power levels: no raising above one's own level, no demoting an equal.
    with pytest.raises(MatrixError):
        check_event_allowed(_ev("m.room.power_levels", "@c:hs", {"users": {"@c:hs": 101}}, ""), base)
    check_event_allowed(_ev("m.room.power_levels", "@c:hs",
                            {"users": {"@c:hs": 100, "@m:hs": 100}, "kick": 100}, ""), base)
    # A state key that is another user's id is refused.
    with pytest.raises(MatrixError):
        check_event_allowed(_ev("m.custom", "@c:hs", {}, "@m:hs"), base)
    with pytest.raises(MatrixError):
        validate_power_levels_content({"users": {"@a:b": "50"}})
    with pytest.raises(MatrixError):
        check_event_allowed(_ev("m.room.create", "@c:other", {"room_version": "11"}, "") | {"prev_events": []},
                            {})

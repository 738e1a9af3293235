"""Serialised "v1" state (tests/common/fixtures/crypto_v1.json, written once
by ``fixtures/generate_crypto_v1.py``) must keep loading and resuming."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.crypto import (
    AttachmentInfo,
    DuplicateMessage,
    IdentityKeyPair,
    InboundSenderKey,
    OneTimePreKey,
    OutboundSenderKey,
    PreKeyBundle,
    SenderKeyMessage,
    Session,
    SignedPreKey,
    UnsupportedVersion,
    decode_message,
    decrypt_attachment,
    decrypt_local,
    decrypt_with_password,
    derive_local_storage_key,
    safety_number,
    x3dh_initiate,
)

FIXTURE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "crypto_v1.json").read_text()
)
ROOM = b"!room:example.org"


def test_identities_and_prekeys() -> None:
    alice = IdentityKeyPair.from_dict(FIXTURE["alice_identity"])
    bob = IdentityKeyPair.from_dict(FIXTURE["bob_identity"])
    assert alice.seed == bytes(range(32))
    spk = SignedPreKey.from_dict(FIXTURE["bob_signed_prekey"])
    otk = OneTimePreKey.from_dict(FIXTURE["bob_one_time_prekey"])
    bundle = PreKeyBundle.from_dict(FIXTURE["bundle"])
    assert bundle.identity_key == bob.public
    assert bundle.verify() == (spk.key_id, spk.public_bytes, otk.key_id, otk.public_bytes)
    assert spk.created_ms == 1_700_000_000_000
    x3dh_initiate(alice, bundle)
    sn = safety_number("@alice:example.org", alice.public, "@bob:example.org", bob.public)
    assert sn.digits == FIXTURE["safety_number"]


def test_sessions_resume() -> None:
    alice = Session.from_dict(FIXTURE["alice_session"])
    bob = Session.from_dict(FIXTURE["bob_session"])
    assert bob.decrypt(decode_message(FIXTURE["message_pending"])) == b"pending"
    skipped = decode_message(FIXTURE["message_skipped"])
    assert bob.decrypt(skipped) == b"skipped"  # key from the stored skipped set
    with pytest.raises(DuplicateMessage):
        bob.decrypt(skipped)
    assert alice.decrypt(bob.encrypt(b"new reply")) == b"new reply"
    assert bob.decrypt(alice.encrypt(b"new message")) == b"new message"


def test_sender_keys_resume() -> None:
    out = OutboundSenderKey.from_dict(FIXTURE["outbound_sender_key"])
    inbound = InboundSenderKey.from_dict(FIXTURE["inbound_sender_key"])
    g0 = SenderKeyMessage.from_bytes(bytes.fromhex(FIXTURE["group_message_0"]))
    assert inbound.decrypt(g0, ROOM) == b"group 0"
    assert inbound.decrypt(out.encrypt(b"group 2", ROOM), ROOM) == b"group 2"


def test_envelopes_and_attachment() -> None:
    blob = bytes.fromhex(FIXTURE["password_envelope"])
    assert decrypt_with_password(blob, "correct horse", allow_weak=True) == (
        b"identity seed goes here"
    )
    alice = IdentityKeyPair.from_dict(FIXTURE["alice_identity"])
    key = derive_local_storage_key(alice, "sessions")
    assert decrypt_local(key, bytes.fromhex(FIXTURE["local_record"]), context=b"row-1") == (
        b"session row"
    )
    info = AttachmentInfo.from_dict(FIXTURE["attachment_info"])
    assert decrypt_attachment(bytes.fromhex(FIXTURE["attachment"]), info) == (
        b"attachment body " * 10
    )


@pytest.mark.parametrize(
    "name,cls",
    [
        ("alice_identity", IdentityKeyPair),
        ("alice_session", Session),
        ("inbound_sender_key", InboundSenderKey),
        ("outbound_sender_key", OutboundSenderKey),
        ("bundle", PreKeyBundle),
    ],
)
def test_future_versions_refused(name: str, cls: Any) -> None:
    with pytest.raises(UnsupportedVersion):
        cls.from_dict({**FIXTURE[name], "v": 2})

"""X3DH (spec §3) and pairwise sessions."""

from __future__ import annotations

import copy

import pytest

from common.crypto import (
    DuplicateMessage,
    IdentityKeyPair,
    InvalidHeader,
    InvalidSignature,
    OneTimePreKey,
    PreKeyBundle,
    Session,
    SessionNotReady,
    SignedPreKey,
    UnknownPreKey,
    decode_message,
    encode_message,
    x3dh_initiate,
    x3dh_respond,
)
from common.crypto import primitives as P
from common.crypto.double_ratchet import DoubleRatchet
from common.crypto.serialization import b64e
from common.crypto.session import PreKeyMessage
from common.crypto.x3dh import x3dh_kdf

from .crypto_helpers import ALICE, BOB, session_pair

H = bytes.fromhex
ALICE_IK = IdentityKeyPair.from_seed(bytes(range(32)))
BOB_IK = IdentityKeyPair.from_seed(bytes(range(32, 64)))
SPK = SignedPreKey(1, P.load_x25519_private(b"\x01" * 32))
OTK = OneTimePreKey(7, P.load_x25519_private(b"\x02" * 32))
EK = b"\x03" * 32


def _bundle(otk: OneTimePreKey | None = OTK) -> PreKeyBundle:
    return PreKeyBundle.create(BOB_IK, BOB, "BOBDEV", SPK, otk)


def test_fixed_vector_with_and_without_otk() -> None:
    r = x3dh_initiate(ALICE_IK, _bundle(), ephemeral=P.load_x25519_private(EK))
    assert r.shared_secret == H("a2e99ae0288e132c939a508cf6f5679ea02f36905df5274be439a7606ae3d103")
    assert r.associated_data == ALICE_IK.public.ed25519 + BOB_IK.public.ed25519
    # Independent recomputation of X3DH §3.3 from the primitives.
    ek = P.load_x25519_private(EK)
    km = (
        P.x25519(ALICE_IK.dh_private, SPK.public_bytes)
        + P.x25519(ek, BOB_IK.public.x25519)
        + P.x25519(ek, SPK.public_bytes)
        + P.x25519(ek, OTK.public_bytes)
    )
    assert r.shared_secret == P.hkdf_sha256(
        b"\xff" * 32 + km, salt=bytes(32), info=b"Parley X3DH v1", length=32
    )
    assert x3dh_kdf(km) == r.shared_secret
    r2 = x3dh_initiate(ALICE_IK, _bundle(None), ephemeral=P.load_x25519_private(EK))
    assert r2.shared_secret == H(
        "eb2648d4bf7f6bf7e4a1dc1c7eabfbe6a74ddc72dd36cd4decf91bbf518f59fc"
    )
    assert r2.header.one_time_prekey_id is None


@pytest.mark.parametrize("with_otk", [True, False])
def test_both_sides_agree(with_otk: bool) -> None:
    otk = OTK if with_otk else None
    r = x3dh_initiate(ALICE_IK, _bundle(otk))
    s = x3dh_respond(BOB_IK, r.header, SPK, otk)
    assert s.shared_secret == r.shared_secret
    assert s.associated_data == r.associated_data
    assert s.peer_identity == ALICE_IK.public


def test_bundle_roundtrip() -> None:
    b = _bundle()
    assert PreKeyBundle.from_dict(b.to_dict()) == b


def _tampered(path: list[str], value: object) -> PreKeyBundle:
    d = copy.deepcopy(_bundle().to_dict())
    target = d
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return PreKeyBundle.from_dict(d)


@pytest.mark.parametrize(
    "path,value",
    [
        (["signed_prekey", "key"], b64e(P.x25519_public_bytes(P.generate_x25519()))),
        (["signed_prekey", "key_id"], 2),
        (["one_time_prekey", "key_id"], 8),
        (["identity_key"], ALICE_IK.public.to_b64()),
        (["user_id"], "@mallory:example.org"),
        (["signed_prekey", "usage"], "one_time_prekey"),
    ],
    # Fixed ids: some values are random, and xdist workers must collect the same names.
    ids=["spk-key", "spk-id", "otk-id", "identity-key", "user-id", "usage"],
)
def test_bad_bundle_signature_refused(path: list[str], value: object) -> None:
    bundle = _tampered(path, value)
    with pytest.raises((InvalidSignature, InvalidHeader)):
        x3dh_initiate(ALICE_IK, bundle)


def test_signature_checked_before_key_use() -> None:
    # A low-order SPK would fail in DH; with a bad signature we must see
    # InvalidSignature instead, i.e. nothing was computed first.
    d = _bundle().to_dict()
    d["signed_prekey"]["key"] = b64e(bytes(32))
    with pytest.raises(InvalidSignature):
        x3dh_initiate(ALICE_IK, PreKeyBundle.from_dict(d))


def test_responder_otk_checks() -> None:
    r = x3dh_initiate(ALICE_IK, _bundle())
    with pytest.raises(UnknownPreKey):
        x3dh_respond(BOB_IK, r.header, SPK, None)
    with pytest.raises(UnknownPreKey):
        x3dh_respond(BOB_IK, r.header, SPK, OneTimePreKey.generate(8))
    r2 = x3dh_initiate(ALICE_IK, _bundle(None))
    with pytest.raises(UnknownPreKey):
        x3dh_respond(BOB_IK, r2.header, SPK, OTK)


def test_session_accept_tries_previous_spk() -> None:
    old_spk, new_spk = SPK, SignedPreKey.generate(2)
    alice = Session.initiate(ALICE_IK, PreKeyBundle.create(BOB_IK, BOB, "BOBDEV", old_spk))
    first = decode_message(encode_message(alice.encrypt(b"via old spk")))
    assert isinstance(first, PreKeyMessage)
    # Header names SPK 1; even listed last it is found; and a mislabelled id still works.
    res = Session.accept(BOB_IK, first, ALICE, "A", [new_spk, old_spk], lambda _i: None)
    assert res.plaintext == b"via old spk" and res.signed_prekey_id == 1
    relabelled = SignedPreKey(5, old_spk.private)
    res2 = Session.accept(BOB_IK, first, ALICE, "A", [new_spk, relabelled], lambda _i: None)
    assert res2.plaintext == b"via old spk"
    with pytest.raises(Exception):  # noqa: B017 - DecryptionFailed from every candidate
        Session.accept(BOB_IK, first, ALICE, "A", [new_spk], lambda _i: None)


def test_session_unknown_otk() -> None:
    alice = Session.initiate(ALICE_IK, _bundle())
    first = alice.encrypt(b"x")
    assert isinstance(first, PreKeyMessage)
    with pytest.raises(UnknownPreKey):
        Session.accept(BOB_IK, first, ALICE, "A", [SPK], lambda _i: None)


def test_session_flow_and_prekey_replay() -> None:
    alice = Session.initiate(ALICE_IK, _bundle())
    m1, m2 = alice.encrypt(b"one"), alice.encrypt(b"two")
    assert isinstance(m1, PreKeyMessage) and isinstance(m2, PreKeyMessage)
    res = Session.accept(BOB_IK, m1, ALICE, "A", [SPK], lambda _i: OTK)
    bob = res.session
    assert res.one_time_prekey_id == 7
    assert bob.decrypt(m2) == b"two"
    with pytest.raises(DuplicateMessage):
        bob.decrypt(m1)
    reply = bob.encrypt(b"three")
    assert not isinstance(reply, PreKeyMessage)
    assert alice.decrypt(reply) == b"three"
    assert not isinstance(alice.encrypt(b"four"), PreKeyMessage)
    other = Session.initiate(ALICE_IK, _bundle()).encrypt(b"x")
    assert isinstance(other, PreKeyMessage)
    with pytest.raises(InvalidHeader):
        bob.decrypt(other)


def test_responder_cannot_send_first() -> None:
    r = DoubleRatchet.init_responder(bytes(32), SPK.private, b"")
    with pytest.raises(SessionNotReady):
        r.encrypt(b"x")


def test_session_serialisation() -> None:
    alice, bob = session_pair(with_otk=False)
    alice2 = Session.from_dict(alice.to_dict())
    bob2 = Session.from_dict(bob.to_dict())
    assert bob2.decrypt(alice2.encrypt(b"after reload")) == b"after reload"
    assert alice2.decrypt(bob2.encrypt(b"back")) == b"back"
    assert alice2.session_id == bob2.session_id


def test_wire_format_errors() -> None:
    with pytest.raises(InvalidHeader):
        decode_message({"v": 1, "type": "nope", "body": ""})
    with pytest.raises(InvalidHeader):
        decode_message({"v": 2, "type": "message", "body": ""})
    with pytest.raises(InvalidHeader):
        decode_message([])

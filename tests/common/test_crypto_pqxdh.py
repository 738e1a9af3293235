"""PQXDH (rev. 3, ML-KEM-1024): vectors, sessions, tampering, downgrade rules."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto import (
    CryptoError,
    DecryptionFailed,
    DowngradeRefused,
    IdentityKeyPair,
    InvalidHeader,
    InvalidSignature,
    KemPreKey,
    OneTimePreKey,
    PQPreKeyBundle,
    PQXDHHeader,
    PreKeyBundle,
    Session,
    SignedPreKey,
    UnknownPreKey,
    UnsupportedVersion,
    choose_handshake,
    decode_message,
    encode_message,
    pqxdh_initiate,
    pqxdh_respond,
)
from common.crypto import primitives as P
from common.crypto.keys import X3DH_ALGORITHM
from common.crypto.pqxdh import PQXDH_ALGORITHM, PQXDH_INFO, pqxdh_kdf
from common.crypto.serialization import b64d, b64e
from common.crypto.session import PreKeyMessage
from common.crypto.x3dh import x3dh_kdf
from tests.common.fixtures.generate_pqxdh_v1 import ALICE, BOB, BOB_DEVICE, keys

VECTORS: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "pqxdh_v1.json").read_text()
)
A_IK, B_IK, SPK, OTK, KEM, LAST_RESORT = keys()


def kems(*held: KemPreKey) -> Any:
    def lookup(key_id: int, last_resort: bool) -> KemPreKey | None:
        return next((k for k in held if k.key_id == key_id and k.last_resort == last_resort), None)
    return lookup


def fresh_bundle(kem: KemPreKey | None = None, otk: OneTimePreKey | None = None) -> tuple[
        IdentityKeyPair, SignedPreKey, KemPreKey, PQPreKeyBundle]:
    ik, spk = IdentityKeyPair.generate(), SignedPreKey.generate(1)
    kem = kem or KemPreKey.generate(5)
    return ik, spk, kem, PQPreKeyBundle.create(ik, BOB, BOB_DEVICE, spk, kem, otk)


# ---------------------------------------------------------------- test vectors


@pytest.mark.parametrize("case", ["one_time", "last_resort"])
def test_vectors_reproduce(case: str) -> None:
    v = VECTORS[case]
    kem = KEM if case == "one_time" else LAST_RESORT
    otk = OTK if case == "one_time" else None
    assert kem.public_bytes.hex() == v["kem_public"]
    # Ed25519 signatures are deterministic: the bundle is reproduced byte for byte.
    bundle = PQPreKeyBundle.create(B_IK, BOB, BOB_DEVICE, SPK, kem, otk)
    assert bundle.to_dict() == v["bundle"]
    header = PQXDHHeader.from_dict(v["header"])
    assert header.to_dict() == v["header"]
    assert header.kem_last_resort is (case == "last_resort")
    # FIPS 203 decapsulation is deterministic.
    assert kem.decapsulate(header.kem_ciphertext).hex() == v["kem_shared_secret"]
    bob = pqxdh_respond(B_IK, header, SPK, kem, otk)
    assert bob.shared_secret.hex() == v["shared_secret"]
    assert bob.associated_data.hex() == v["associated_data"]
    ephemeral = P.load_x25519_private(bytes.fromhex(VECTORS["seeds"]["alice_ephemeral"]))
    alice = pqxdh_initiate(A_IK, PQPreKeyBundle.from_dict(v["bundle"]), ephemeral=ephemeral,
                           encapsulation=(bytes.fromhex(v["kem_shared_secret"]),
                                          header.kem_ciphertext))
    assert alice.header == header
    assert alice.shared_secret == bob.shared_secret
    assert alice.associated_data == bob.associated_data
    # AD = IK_A || IK_B || SHA-256(EncodeKEM(PQPK_B) || CT)
    assert alice.associated_data[:64] == A_IK.public.ed25519 + B_IK.public.ed25519
    assert len(alice.associated_data) == 96


@pytest.mark.parametrize("case", ["one_time", "last_resort"])
def test_vector_wire_message_opens(case: str) -> None:
    v = VECTORS[case]
    message = decode_message(v["wire_message"])
    assert isinstance(message, PreKeyMessage) and isinstance(message.x3dh, PQXDHHeader)
    otk = OTK if case == "one_time" else None
    result = Session.accept(B_IK, message, ALICE, "ALICEDEV", [SPK], lambda _i: otk,
                            kems(KEM, LAST_RESORT), require_pq=True)
    assert result.plaintext == b"pqxdh vector " + case.encode()
    assert result.kem_prekey_id == (3 if case == "one_time" else 1)
    assert result.kem_last_resort is (case == "last_resort")
    assert result.one_time_prekey_id == (7 if case == "one_time" else None)


def test_kdf_is_not_x3dh_kdf() -> None:
    assert PQXDH_INFO == b"Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024"
    assert pqxdh_kdf(b"\x01" * 128) != x3dh_kdf(b"\x01" * 128)
    assert pqxdh_kdf(b"\x01" * 128).hex() == pqxdh_kdf(b"\x01" * 128).hex()


def test_kem_prekey_state_round_trip() -> None:
    state = VECTORS["kem_prekey_state"]
    restored = KemPreKey.from_dict(state)
    assert restored.public_bytes == KEM.public_bytes and restored.to_dict() == state
    with pytest.raises(UnsupportedVersion):
        KemPreKey.from_dict({**state, "v": 2})
    with pytest.raises(InvalidHeader):
        KemPreKey.from_dict({**state, "last_resort": "no"})


# ---------------------------------------------------------------- sessions


@pytest.mark.parametrize("with_otk", [True, False])
def test_pqxdh_session_between_two_clients(with_otk: bool) -> None:
    a_ik = IdentityKeyPair.generate()
    otk = OneTimePreKey.generate(4) if with_otk else None
    b_ik, spk, kem, bundle = fresh_bundle(otk=otk)
    assert choose_handshake(bundle.to_dict(), bundle.to_dict()) == "pqxdh"
    alice = Session.initiate_pqxdh(a_ik, PQPreKeyBundle.from_dict(bundle.to_dict()))
    first = decode_message(encode_message(alice.encrypt(b"quantum hello")))
    assert isinstance(first, PreKeyMessage) and isinstance(first.x3dh, PQXDHHeader)
    result = Session.accept(b_ik, first, ALICE, "ALICEDEV", [spk], lambda _i: otk, kems(kem),
                            require_pq=True)
    bob = result.session
    assert result.plaintext == b"quantum hello"
    assert (result.kem_prekey_id, result.kem_last_resort) == (kem.key_id, False)
    assert bob.peer_identity == a_ik.public
    assert alice.decrypt(bob.encrypt(b"reply")) == b"reply"
    assert bob.decrypt(alice.encrypt(b"after")) == b"after"
    # Both sessions survive serialisation mid-conversation, PQXDH header included.
    alice2 = Session.from_dict(json.loads(json.dumps(alice.to_dict())))
    bob2 = Session.from_dict(json.loads(json.dumps(bob.to_dict())))
    assert bob2.decrypt(alice2.encrypt(b"resumed")) == b"resumed"


def test_pending_pqxdh_header_survives_serialisation() -> None:
    a_ik = IdentityKeyPair.generate()
    b_ik, spk, kem, bundle = fresh_bundle()
    alice = Session.from_dict(Session.initiate_pqxdh(a_ik, bundle).to_dict())
    assert isinstance(alice.pending_x3dh, PQXDHHeader)
    first = alice.encrypt(b"x")
    assert isinstance(first, PreKeyMessage)
    accepted = Session.accept(b_ik, first, ALICE, "A", [spk], lambda _i: None, kems(kem))
    assert accepted.plaintext == b"x"


def test_tampered_kem_ciphertext_fails() -> None:
    """Implicit rejection gives another SS; the AD binding fails the AEAD too."""
    a_ik = IdentityKeyPair.generate()
    b_ik, spk, kem, bundle = fresh_bundle()
    first = Session.initiate_pqxdh(a_ik, bundle).encrypt(b"secret")
    assert isinstance(first, PreKeyMessage) and isinstance(first.x3dh, PQXDHHeader)
    ct = bytearray(first.x3dh.kem_ciphertext)
    ct[100] ^= 1
    header = PQXDHHeader(**{**first.x3dh.__dict__, "kem_ciphertext": bytes(ct)})
    with pytest.raises(DecryptionFailed):
        Session.accept(b_ik, PreKeyMessage(header, first.message), ALICE, "A", [spk],
                       lambda _i: None, kems(kem))


def test_other_kem_key_fails_and_unknown_kem_refused() -> None:
    a_ik = IdentityKeyPair.generate()
    b_ik, spk, kem, bundle = fresh_bundle()
    first = Session.initiate_pqxdh(a_ik, bundle).encrypt(b"secret")
    assert isinstance(first, PreKeyMessage)
    impostor = KemPreKey(kem.key_id, KemPreKey.generate(0).private)
    with pytest.raises(DecryptionFailed):
        Session.accept(b_ik, first, ALICE, "A", [spk], lambda _i: None, kems(impostor))
    with pytest.raises(UnknownPreKey):
        Session.accept(b_ik, first, ALICE, "A", [spk], lambda _i: None, kems())
    with pytest.raises(UnknownPreKey):  # a header naming the last-resort key is not the one-time one
        pqxdh_respond(b_ik, first.x3dh, spk,  # type: ignore[arg-type]
                      KemPreKey(kem.key_id, kem.private, last_resort=True))


def test_bundle_signatures_checked_first() -> None:
    a_ik = IdentityKeyPair.generate()
    _, _, _, bundle = fresh_bundle()
    d = bundle.to_dict()
    forged = copy.deepcopy(d)
    # A server substituting its own KEM key (validly encoded) is caught by the signature.
    forged["kem_prekey"]["key"] = b64e(b"\x0a" + KemPreKey.generate(9).public_bytes)
    with pytest.raises(InvalidSignature):
        pqxdh_initiate(a_ik, PQPreKeyBundle.from_dict(forged))
    wrong_usage = copy.deepcopy(d)
    wrong_usage["kem_prekey"]["usage"] = "signed_prekey"
    with pytest.raises(InvalidHeader):
        pqxdh_initiate(a_ik, PQPreKeyBundle.from_dict(wrong_usage))
    with pytest.raises(InvalidHeader):
        PQPreKeyBundle.from_dict({**d, "kem_prekey": None})
    # Another identity signing a KEM key does not pass either.
    other = KemPreKey.generate(2).signed_public(IdentityKeyPair.generate(), BOB, BOB_DEVICE)
    with pytest.raises(InvalidSignature):
        pqxdh_initiate(a_ik, PQPreKeyBundle.from_dict({**d, "kem_prekey": other}))


# ---------------------------------------------------------------- downgrade


def test_downgrade_refused_initiator() -> None:
    b_ik, spk, _kem, bundle = fresh_bundle()
    device_keys = {"algorithms": [X3DH_ALGORITHM, PQXDH_ALGORITHM]}
    stripped = PreKeyBundle.create(b_ik, BOB, BOB_DEVICE, spk).to_dict()
    with pytest.raises(DowngradeRefused):
        choose_handshake(device_keys, stripped)
    broken = bundle.to_dict()
    broken["kem_prekey"] = {**broken["kem_prekey"], "key_id": 99}  # signature breaks
    with pytest.raises(DowngradeRefused):
        choose_handshake(device_keys, broken)
    assert choose_handshake(device_keys, bundle.to_dict()) == "pqxdh"
    # A device that never advertised PQXDH may still use X3DH.
    assert choose_handshake({"algorithms": [X3DH_ALGORITHM]}, stripped) == "x3dh"


def test_downgrade_refused_responder() -> None:
    a_ik = IdentityKeyPair.generate()
    b_ik, spk, kem, _ = fresh_bundle()
    x3dh_only = Session.initiate(a_ik, PreKeyBundle.create(b_ik, BOB, BOB_DEVICE, spk))
    first = x3dh_only.encrypt(b"classical")
    assert isinstance(first, PreKeyMessage)
    with pytest.raises(DowngradeRefused):
        Session.accept(b_ik, first, ALICE, "A", [spk], lambda _i: None, kems(kem), require_pq=True)
    # Without the rule (a device that publishes no KEM key) it is accepted.
    ok = Session.accept(b_ik, first, ALICE, "A", [spk], lambda _i: None, kems(kem))
    assert ok.plaintext == b"classical" and ok.kem_prekey_id is None


def test_x3dh_header_cannot_pose_as_pqxdh() -> None:
    """Dropping the KEM fields of a PQXDH message gives an X3DH header whose SK differs."""
    a_ik = IdentityKeyPair.generate()
    b_ik, spk, kem, bundle = fresh_bundle()
    first = Session.initiate_pqxdh(a_ik, bundle).encrypt(b"pq")
    assert isinstance(first, PreKeyMessage) and isinstance(first.x3dh, PQXDHHeader)
    stripped = PreKeyMessage(first.x3dh.x3dh_part(), first.message)
    with pytest.raises(CryptoError):
        Session.accept(b_ik, stripped, ALICE, "A", [spk], lambda _i: None, kems(kem))


# ---------------------------------------------------------------- properties


@settings(max_examples=25, deadline=None)
@given(body=st.binary(max_size=256), with_otk=st.booleans(), last_resort=st.booleans())
def test_property_both_sides_agree(body: bytes, with_otk: bool, last_resort: bool) -> None:
    a_ik = IdentityKeyPair.generate()
    otk = OneTimePreKey.generate(1) if with_otk else None
    kem = KemPreKey.generate(2, last_resort=last_resort)
    b_ik, spk, _, bundle = fresh_bundle(kem, otk)
    alice = pqxdh_initiate(a_ik, bundle)
    header = PQXDHHeader.from_dict(json.loads(json.dumps(alice.header.to_dict())))
    bob = pqxdh_respond(b_ik, header, spk, kem, otk)
    assert alice.shared_secret == bob.shared_secret
    assert alice.associated_data == bob.associated_data
    first = Session.initiate_pqxdh(a_ik, bundle).encrypt(body)
    assert isinstance(first, PreKeyMessage)
    assert Session.accept(b_ik, first, ALICE, "A", [spk], lambda _i: otk,
                          kems(kem)).plaintext == body


@settings(max_examples=25, deadline=None)
@given(position=st.integers(min_value=0, max_value=1567), bit=st.integers(min_value=0, max_value=7))
def test_property_any_ciphertext_bit_changes_the_secret(position: int, bit: int) -> None:
    a_ik = IdentityKeyPair.generate()
    b_ik, spk, kem, bundle = fresh_bundle(KEM)
    alice = pqxdh_initiate(a_ik, bundle)
    ct = bytearray(alice.header.kem_ciphertext)
    ct[position] ^= 1 << bit
    bad = pqxdh_respond(b_ik, PQXDHHeader(**{**alice.header.__dict__, "kem_ciphertext": bytes(ct)}),
                        spk, kem)
    assert bad.shared_secret != alice.shared_secret
    assert bad.associated_data != alice.associated_data


def test_malformed_headers_refused() -> None:
    good = VECTORS["one_time"]["header"]
    for broken in ({**good, "kem_ciphertext": b64e(b"short")},
                   {**good, "kem_last_resort": 1},
                   {k: v for k, v in good.items() if k != "kem_prekey_id"}):
        with pytest.raises(InvalidHeader):
            PQXDHHeader.from_dict(broken)
    assert len(b64d(good["kem_ciphertext"])) == 1568

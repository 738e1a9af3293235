"""Double Ratchet: fixed KDF vectors and property tests (delivery order,
bounds, tampering, replays, serialisation) — every refusal leaves the state
exactly as it was."""

from __future__ import annotations

import hashlib
import hmac
import os

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from common.crypto import primitives as P
from common.crypto.double_ratchet import (
    MAX_SKIP,
    MAX_STORED_SKIPPED,
    DoubleRatchet,
    Header,
    RatchetMessage,
    kdf_ck,
    kdf_rk,
    message_key_material,
)
from common.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    DuplicateMessage,
    InvalidHeader,
    TooManySkippedMessages,
    UnsupportedVersion,
)
from common.crypto.serialization import dumps, loads

H = bytes.fromhex
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def _hkdf(ikm: bytes, salt: bytes, info: bytes, length: int) -> bytes:
    """RFC 5869 written out with hmac, independent of the library."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([i]), hashlib.sha256).digest()
        out, i = out + block, i + 1
    return out[:length]


def test_kdf_vectors() -> None:
    rk, dh = bytes(range(32)), bytes(range(32, 64))
    new_rk, ck = kdf_rk(rk, dh)
    assert new_rk == H("71760479fb3e16f7ce3f10ca1086da7af0d056d5c1d705b14f990cb43cda8154")
    assert ck == H("e2a128b43b7d99ec465936ac49129c34e9107ed082aad2e90c943c26167e48f9")
    assert new_rk + ck == _hkdf(dh, rk, b"Parley DR root v1", 64)

    next_ck, mk = kdf_ck(rk)
    assert next_ck == H("4304c22c84a53755ab08ead8d97a8d429be5efa480682d7ad1da27f73e1fbe1d")
    assert mk == H("9b4c8120a4823a95f47cde17a244f4507244ee6e3957d1fab9fa29b44d3829b7")
    assert next_ck == hmac.new(rk, b"\x02", hashlib.sha256).digest()
    assert mk == hmac.new(rk, b"\x01", hashlib.sha256).digest()

    key, nonce = message_key_material(rk)
    assert key == H("980e940883c1e8ad54431403174468c52cf28d97c160072ffeda2f67f6dcdecd")
    assert nonce == H("13f797f3866a159825aac4c1")
    assert key + nonce == _hkdf(rk, bytes(32), b"Parley DR message v1", 44)


def test_header_encoding() -> None:
    h = Header(bytes(range(32)), 3, 258)
    assert h.encode() == b"\x01" + bytes(range(32)) + H("00000003") + H("00000102")
    assert Header.decode(h.encode()) == h
    with pytest.raises(UnsupportedVersion):
        Header.decode(b"\x02" + h.encode()[1:])
    with pytest.raises(InvalidHeader):
        RatchetMessage.from_bytes(h.encode())


def pair() -> tuple[DoubleRatchet, DoubleRatchet]:
    sk, spk = os.urandom(32), P.generate_x25519()
    ad = b"IK_A||IK_B"
    return (
        DoubleRatchet.init_initiator(sk, P.x25519_public_bytes(spk), ad),
        DoubleRatchet.init_responder(sk, spk, ad),
    )


def reload(r: DoubleRatchet) -> DoubleRatchet:
    return DoubleRatchet.from_dict(loads(dumps(r.to_dict())))


def refused(r: DoubleRatchet, msg: RatchetMessage | bytes, exc: type[Exception]) -> None:
    before = r.fingerprint()
    with pytest.raises(exc):
        r.decrypt(msg)
    assert r.fingerprint() == before


def test_basic_and_replay() -> None:
    a, b = pair()
    m = a.encrypt(b"x")
    assert b.decrypt(m.to_bytes()) == b"x"
    refused(b, m, DuplicateMessage)


ACTIONS = st.sampled_from(["a_send", "b_send", "deliver", "deliver", "replay", "reload", "tamper"])


@SETTINGS
@given(st.data())
def test_any_delivery_order_within_bounds(data: st.DataObject) -> None:
    """Random conversation: messages in both directions, delivered in any
    order, with replays, tampering and serialise/reload at random points."""
    a, b = pair()
    sides = {"a": a, "b": b}
    in_flight: list[tuple[str, bytes, RatchetMessage]] = []
    delivered: list[tuple[str, RatchetMessage]] = []
    counter = 0
    for _ in range(data.draw(st.integers(1, 60))):
        action = data.draw(ACTIONS)
        if action in ("a_send", "b_send"):
            sender = action[0]
            if not sides[sender].can_send:
                continue
            counter += 1
            pt = f"{sender}{counter}".encode()
            in_flight.append(("b" if sender == "a" else "a", pt, sides[sender].encrypt(pt)))
        elif action == "deliver" and in_flight:
            to, pt, msg = in_flight.pop(data.draw(st.integers(0, len(in_flight) - 1)))
            assert sides[to].decrypt(msg) == pt
            delivered.append((to, msg))
        elif action == "replay" and delivered:
            to, msg = data.draw(st.sampled_from(delivered))
            refused(sides[to], msg, DuplicateMessage)
        elif action == "reload":
            sides = {k: reload(v) for k, v in sides.items()}
        elif action == "tamper" and in_flight:
            to, _pt, msg = data.draw(st.sampled_from(in_flight))
            raw = bytearray(msg.to_bytes())
            pos = data.draw(st.integers(0, len(raw) - 1))
            raw[pos] ^= 1 << data.draw(st.integers(0, 7))
            refused(sides[to], bytes(raw), CryptoError)
    for i in data.draw(st.permutations(range(len(in_flight)))):
        to, pt, msg = in_flight[i]
        assert sides[to].decrypt(msg) == pt


@settings(max_examples=15, deadline=None)
@given(st.integers(0, MAX_SKIP + 40), st.booleans())
def test_skip_bound_in_chain(n: int, reload_first: bool) -> None:
    a, b = pair()
    msgs = [a.encrypt(b"%d" % i) for i in range(n + 1)]
    if reload_first:
        b = reload(b)
    if n <= MAX_SKIP:
        assert b.decrypt(msgs[n]) == b"%d" % n
        assert b.stored_skipped_keys == n
        for i in range(n):  # every skipped one still decrypts, once
            assert b.decrypt(msgs[i]) == b"%d" % i
    else:
        refused(b, msgs[n], TooManySkippedMessages)
        assert b.decrypt(msgs[0]) == b"0"


def test_skip_bound_across_dh_ratchet() -> None:
    a, b = pair()
    assert b.decrypt(a.encrypt(b"start")) == b"start"
    old = [a.encrypt(b"old %d" % i) for i in range(MAX_SKIP + 1)]  # n = 1 .. MAX_SKIP+1
    # Bob replies; Alice ratchets and sends on a new chain with PN = MAX_SKIP + 2,
    # while Bob's receiving chain is at 1: one key too many to skip.
    assert a.decrypt(b.encrypt(b"reply")) == b"reply"
    new = a.encrypt(b"new")
    refused(b, new, TooManySkippedMessages)
    assert b.decrypt(old[0]) == b"old 0"  # now only MAX_SKIP+1 to skip on the old chain
    assert b.decrypt(new) == b"new"
    assert b.decrypt(old[-1]) == b"old %d" % MAX_SKIP


def test_total_skipped_keys_bounded_and_oldest_evicted() -> None:
    a, b = pair()
    first_skipped: RatchetMessage | None = None
    rounds = MAX_STORED_SKIPPED // MAX_SKIP + 2
    for r in range(rounds):
        msgs = [a.encrypt(b"m") for _ in range(MAX_SKIP + 1)]
        if first_skipped is None:
            first_skipped = msgs[0]
        assert b.decrypt(msgs[-1]) == b"m"
        assert b.stored_skipped_keys <= MAX_STORED_SKIPPED
        assert a.decrypt(b.encrypt(b"r%d" % r)) == b"r%d" % r
    assert b.stored_skipped_keys == MAX_STORED_SKIPPED
    assert first_skipped is not None
    refused(b, first_skipped, DuplicateMessage)  # evicted: refused, not decrypted


def test_old_chain_replay_and_beyond_end() -> None:
    a, b = pair()
    m0 = a.encrypt(b"0")
    assert b.decrypt(m0) == b"0"
    assert a.decrypt(b.encrypt(b"r")) == b"r"
    assert b.decrypt(a.encrypt(b"1")) == b"1"  # Bob's receiving chain moved on
    refused(b, m0, DuplicateMessage)
    forged = RatchetMessage(Header(m0.header.dh, 0, 5), m0.ciphertext)
    refused(b, forged, DecryptionFailed)


@SETTINGS
@given(st.data())
def test_tampered_messages_refused_without_state_change(data: st.DataObject) -> None:
    a, b = pair()
    assert b.decrypt(a.encrypt(b"warm-up")) == b"warm-up"
    if data.draw(st.booleans()):
        assert a.decrypt(b.encrypt(b"pong")) == b"pong"
    msg = a.encrypt(b"target")
    raw = bytearray(msg.to_bytes())
    for _ in range(data.draw(st.integers(1, 3))):
        pos = data.draw(st.integers(0, len(raw) - 1))
        raw[pos] ^= data.draw(st.integers(1, 255))
    if data.draw(st.booleans()):
        raw = raw[: data.draw(st.integers(0, len(raw) - 1))]
    assume(bytes(raw) != msg.to_bytes())
    refused(b, bytes(raw), CryptoError)
    assert b.decrypt(msg) == b"target"


def test_wrong_associated_data_refused() -> None:
    a, b = pair()
    b2 = DoubleRatchet.from_dict({**b.to_dict(), "ad": "b3RoZXI"})
    refused(b2, a.encrypt(b"x"), DecryptionFailed)


def test_serialisation_versions() -> None:
    a, _ = pair()
    d = a.to_dict()
    with pytest.raises(UnsupportedVersion):
        DoubleRatchet.from_dict({**d, "v": 99})
    with pytest.raises(InvalidHeader):
        DoubleRatchet.from_dict({**d, "type": "other"})
    with pytest.raises(InvalidHeader):
        DoubleRatchet.from_dict({**d, "rk": "short"})

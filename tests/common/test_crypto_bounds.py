"""Crypto bounds and format constants at their exact edges (no sampling).

A sender-key receiver fast-forwards at most ``MAX_SKIP`` iterations; one
more is refused, saying how many it would skip, with the state unchanged.
A Double Ratchet remembers the last ``MAX_PREVIOUS_CHAINS`` finished
receiving chains (so a replay from one of them is a duplicate) and forgets
the oldest, never the newest.
"""

from __future__ import annotations

import pytest

from common.crypto.double_ratchet import MAX_PREVIOUS_CHAINS, DoubleRatchet
from common.crypto.envelope import (
    KdfParams,
    decrypt_local,
    decrypt_with_password,
    encrypt_local,
    encrypt_with_password,
)
from common.crypto.errors import (
    CryptoError,
    DecryptionFailed,
    DuplicateMessage,
    InvalidHeader,
    TooManySkippedMessages,
    UnsupportedVersion,
    WeakParameters,
)
from common.crypto.sender_keys import MAX_SKIP, InboundSenderKey, OutboundSenderKey, SenderKeyDistribution
from tests.common.test_crypto_double_ratchet import pair
from tests.common.test_crypto_double_ratchet import refused as ratchet_refused
from tests.common.test_crypto_sender_keys import ROOM, setup, state


def test_sender_key_fast_forward_stops_exactly_at_max_skip() -> None:
    out, inb = setup()
    msgs = [out.encrypt(b"%d" % i, ROOM) for i in range(2 * MAX_SKIP + 3)]
    before = state(inb)
    with pytest.raises(TooManySkippedMessages, match=f"would skip {MAX_SKIP + 1} "):
        inb.decrypt(msgs[MAX_SKIP + 1], ROOM)
    assert state(inb) == before
    assert inb.decrypt(msgs[MAX_SKIP], ROOM) == b"%d" % MAX_SKIP
    # From there the bound counts again from the new position.
    before = state(inb)
    with pytest.raises(TooManySkippedMessages, match=f"would skip {MAX_SKIP + 1} "):
        inb.decrypt(msgs[2 * MAX_SKIP + 2], ROOM)
    assert state(inb) == before
    assert inb.decrypt(msgs[2 * MAX_SKIP + 1], ROOM) == b"%d" % (2 * MAX_SKIP + 1)
    assert inb.decrypt(msgs[0], ROOM) == b"0"


def _turn(a: DoubleRatchet, b: DoubleRatchet, text: bytes) -> bytes:
    """One message a -> b and its answer b -> a: each side's DH ratchet steps once."""
    message = a.encrypt(text)
    assert b.decrypt(message) == text
    assert a.decrypt(b.encrypt(b"re " + text)) == b"re " + text
    return message.to_bytes()


def test_double_ratchet_remembers_the_newest_finished_chains() -> None:
    a, b = pair()
    sent = [_turn(a, b, b"%d" % i) for i in range(MAX_PREVIOUS_CHAINS + 2)]
    assert b.decrypt(a.encrypt(b"now")) == b"now"  # b's chain of the last turn is finished too
    # The newest finished chains are still known: their replays are duplicates.
    for old in sent[-3:]:
        ratchet_refused(b, old, DuplicateMessage)
    # The oldest were forgotten: a replay is just a message that fails to decrypt.
    ratchet_refused(b, sent[0], DecryptionFailed)
    assert len(b.to_dict()["previous"]) == MAX_PREVIOUS_CHAINS


def test_a_sender_chain_sends_until_its_32_bit_counter_is_full() -> None:
    out, _ = setup()
    near_end = out.to_dict()
    near_end["iteration"] = 2**32 - 2
    out = OutboundSenderKey.from_dict(near_end)
    inb = InboundSenderKey.from_distribution(SenderKeyDistribution.from_bytes(out.distribution().to_bytes()))
    last = out.encrypt(b"last", ROOM)
    assert last.iteration == 2**32 - 2
    assert inb.decrypt(last.to_bytes(), ROOM) == b"last"
    # No wrap-around to iteration 0: the chain refuses, and a new one must be created.
    with pytest.raises(CryptoError, match="exhausted"):
        out.encrypt(b"one too many", ROOM)


def test_an_envelope_with_any_other_magic_is_not_an_envelope() -> None:
    blob = encrypt_with_password(b"s", "pw", params=KdfParams.pbkdf2(1000), allow_weak=True)
    for magic in (b"PRLX", b"PRLZ", b"\x00\x00\x00\x00", b"\xff\xff\xff\xff"):
        with pytest.raises(InvalidHeader, match="not a Parley password envelope"):
            decrypt_with_password(magic + blob[4:], "pw", allow_weak=True)


def test_scrypt_defaults_are_the_documented_parameters() -> None:
    """N = 2**17, r = 8, p = 1 (RFC 7914's interactive-login recommendation), as the header encodes them."""
    assert KdfParams.scrypt().encode() == bytes([2, 17, 8, 1])


def test_scrypt_parameters_are_accepted_up_to_their_ceilings() -> None:
    """N up to 2**20, r 1..32, p 1..16 and at most 1 GiB (128 * r * N); ``check`` derives nothing."""
    for fine in ((20, 8, 1), (17, 8, 16), (17, 32, 1), (1, 1, 1)):
        KdfParams.scrypt(*fine).check(allow_weak=True)
    for over in ((21, 1, 1), (17, 8, 17), (17, 33, 1), (0, 8, 1), (17, 0, 1), (17, 8, 0), (20, 9, 1)):
        with pytest.raises(WeakParameters, match="out of range"):
            KdfParams.scrypt(*over).check(allow_weak=True)


def test_local_storage_records_refuse_other_magic_versions_and_short_blobs() -> None:
    key = bytes(range(32))
    record = encrypt_local(key, b"cached", context=b"ctx")
    assert decrypt_local(key, record, context=b"ctx") == b"cached"
    for magic in (b"PRLY", b"PRLM", b"\x00\x00\x00\x00"):
        with pytest.raises(InvalidHeader, match="not a Parley local-storage record"):
            decrypt_local(key, magic + record[4:], context=b"ctx")
    for short in (b"", b"PRL", b"PRLL"):
        with pytest.raises(InvalidHeader, match="not a Parley local-storage record"):
            decrypt_local(key, short)
    with pytest.raises(UnsupportedVersion, match="local-storage version 2$"):
        decrypt_local(key, record[:4] + b"\x02" + record[5:], context=b"ctx")


def test_pbkdf2_iterations_between_1_and_the_ceiling() -> None:
    KdfParams.pbkdf2(1).check(allow_weak=True)
    KdfParams.pbkdf2(600_000).check()
    with pytest.raises(WeakParameters, match="below|<"):
        KdfParams.pbkdf2(599_999).check()
    for over in (0, 20_000_001):
        with pytest.raises(WeakParameters, match="out of range"):
            KdfParams.pbkdf2(over).check(allow_weak=True)


def test_a_sender_key_receiver_skips_the_documented_256_messages() -> None:
    """256, as the module documents: the 257th message after the last one read is still readable."""
    out, inb = setup()
    msgs = [out.encrypt(b"%d" % i, ROOM) for i in range(258)]
    with pytest.raises(TooManySkippedMessages, match="would skip 257 "):
        inb.decrypt(msgs[257], ROOM)
    assert inb.decrypt(msgs[256], ROOM) == b"256"

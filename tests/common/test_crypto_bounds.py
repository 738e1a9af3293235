"""The bounds that keep a receiver's state small, at their exact edges (no sampling).

A sender-key receiver fast-forwards at most ``MAX_SKIP`` iterations; one
more is refused, saying how many it would skip, with the state unchanged.
A Double Ratchet remembers the last ``MAX_PREVIOUS_CHAINS`` finished
receiving chains (so a replay from one of them is a duplicate) and forgets
the oldest, never the newest.
"""

from __future__ import annotations

import pytest

from common.crypto.double_ratchet import MAX_PREVIOUS_CHAINS, DoubleRatchet
from common.crypto.errors import DecryptionFailed, DuplicateMessage, TooManySkippedMessages
from common.crypto.sender_keys import MAX_SKIP
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

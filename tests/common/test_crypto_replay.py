"""Own-message replay protection: counters, the sliding window, room binding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto import DuplicateMessage, InvalidHeader, UnsupportedVersion
from common.crypto import primitives as P
from common.crypto.replay import (
    WINDOW,
    OutgoingCounter,
    OwnMessageStamp,
    ReplayedMessage,
    ReplayGuard,
    ReplayWindow,
    check_own_stamp,
)

ROOM, OTHER = "!room:example.org", "!other:example.org"


def seal(key: bytes, payload: dict[str, object], room_id: str) -> bytes:
    nonce = P.random_bytes(12)
    return nonce + P.aes_gcm_encrypt(key, nonce, json.dumps(payload).encode(), room_id.encode())


def open_sealed(key: bytes, blob: bytes, room_id: str) -> dict[str, object]:
    value = json.loads(P.aes_gcm_decrypt(key, blob[:12], blob[12:], room_id.encode()))
    assert isinstance(value, dict)
    return value


def test_malicious_server_replays_an_own_message() -> None:
    """Alice's laptop sends; her phone accepts once; the server's copy is refused."""
    key = P.random_bytes(32)  # the message key both own devices hold
    counter, state = OutgoingCounter().next()
    assert counter == 1 and state.last == 1
    stamp = OwnMessageStamp("LAPTOP", counter, ROOM)
    event = seal(key, {"body": "pay Bob 10", "stamp": stamp.to_dict()}, ROOM)

    phone = ReplayGuard()
    payload = open_sealed(key, event, ROOM)
    phone = check_own_stamp(phone, OwnMessageStamp.from_dict(payload["stamp"]), ROOM)
    # The server posts the very same ciphertext again as a new event: it decrypts, but...
    replayed = open_sealed(key, event, ROOM)
    with pytest.raises(ReplayedMessage):
        check_own_stamp(phone, OwnMessageStamp.from_dict(replayed["stamp"]), ROOM)
    # ...and into another room it is refused too (the stamp names the room it was sent to).
    with pytest.raises(ReplayedMessage):
        check_own_stamp(ReplayGuard(), OwnMessageStamp.from_dict(replayed["stamp"]), OTHER)
    # The next real message goes through.
    counter, state = state.next()
    phone = check_own_stamp(phone, OwnMessageStamp("LAPTOP", counter, ROOM), ROOM)
    assert phone.windows["LAPTOP"].highest == 2
    assert issubclass(ReplayedMessage, DuplicateMessage)


def test_out_of_order_within_the_window_is_fine_once() -> None:
    guard = ReplayGuard().accept("D", 10).accept("D", 7).accept("D", 9)
    with pytest.raises(ReplayedMessage):
        guard.accept("D", 7)
    guard = guard.accept("D", 8).accept("E", 7)  # devices are independent
    far = guard.accept("D", 10 + WINDOW)
    with pytest.raises(ReplayedMessage):  # fell out of the window
        far.accept("D", 10)
    assert far.accept("D", 11 + 0).windows["D"].highest == 10 + WINDOW


def test_refusal_leaves_the_guard_unchanged_and_state_round_trips() -> None:
    guard = ReplayGuard().accept("D", 3)
    before = guard.to_dict()
    with pytest.raises(ReplayedMessage):
        guard.accept("D", 3)
    assert guard.to_dict() == before
    restored = ReplayGuard.from_dict(json.loads(json.dumps(before)))
    with pytest.raises(ReplayedMessage):
        restored.accept("D", 3)
    with pytest.raises(UnsupportedVersion):
        ReplayGuard.from_dict({**before, "v": 2})
    with pytest.raises(InvalidHeader):
        ReplayGuard.from_dict({**before, "windows": {"D": {"highest": 1, "bitmap": "zz"}}})
    with pytest.raises(InvalidHeader):
        ReplayWindow().accept(0)
    with pytest.raises(InvalidHeader):
        OwnMessageStamp.from_dict({"device": "D", "counter": 0, "room_id": ROOM})


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=1, max_value=3000), max_size=60))
def test_property_each_counter_accepted_at_most_once(counters: list[int]) -> None:
    guard = ReplayGuard()
    accepted: list[int] = []
    for n in counters:
        highest = max(accepted, default=0)
        should = n not in accepted and n > highest - WINDOW
        try:
            guard = ReplayGuard.from_dict(guard.accept("D", n).to_dict())
            accepted.append(n)
            assert should
        except ReplayedMessage:
            assert not should
    assert len(accepted) == len(set(accepted))

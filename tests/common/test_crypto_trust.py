"""Safety number changed: a new identity key blocks sending until accepted; unreachable devices."""

from __future__ import annotations

import json

import pytest

from common.crypto import IdentityKeyPair, InvalidHeader, UnsupportedVersion, safety_number
from common.crypto.trust import (
    ContactTrust,
    Observation,
    SafetyNumberChanged,
    delivery_report,
    safety_number_notice,
)

ME, BOB, CAROL = "@me:example.org", "@bob:example.org", "@carol:example.org"


def test_safety_number_changed_blocks_sending_until_accepted() -> None:
    me, bob_old, bob_new, carol = (IdentityKeyPair.generate().public for _ in range(4))
    trust, seen = ContactTrust().observe(BOB, bob_old)
    assert seen is Observation.FIRST_SEEN
    trust, seen = trust.observe(CAROL, carol)
    trust.check_send([BOB, CAROL])  # both fine
    same, seen = trust.observe(BOB, bob_old)
    assert seen is Observation.UNCHANGED and same == trust

    trust, seen = trust.observe(BOB, bob_new)
    assert seen is Observation.CHANGED
    with pytest.raises(SafetyNumberChanged) as refused:
        trust.check_send([CAROL, BOB])
    assert refused.value.user_ids == [BOB]
    trust.check_send([CAROL])  # others are not affected
    notice = safety_number_notice(ME, me, trust, BOB)
    assert "safety number with @bob:example.org changed" in notice
    assert safety_number(ME, me, BOB, bob_new).formatted() in notice
    # Seeing the new key again (or the old one) does not unblock by itself.
    assert trust.observe(BOB, bob_new)[1] is Observation.CHANGED
    assert trust.observe(BOB, bob_old)[1] is Observation.CHANGED
    with pytest.raises(InvalidHeader):  # only the key that was shown can be accepted
        trust.accept(BOB, IdentityKeyPair.generate().public)
    accepted = trust.accept(BOB, bob_new)
    accepted.check_send([BOB, CAROL])
    assert accepted.observe(BOB, bob_new)[1] is Observation.UNCHANGED
    assert accepted.observe(BOB, bob_old)[1] is Observation.CHANGED  # the old key is now the change


def test_rejecting_keeps_the_old_key_and_state_round_trips() -> None:
    bob_old, bob_new = IdentityKeyPair.generate().public, IdentityKeyPair.generate().public
    trust = ContactTrust().observe(BOB, bob_old)[0].observe(BOB, bob_new)[0]
    restored = ContactTrust.from_dict(json.loads(json.dumps(trust.to_dict())))
    assert restored == trust and restored.is_blocked(BOB)
    kept = restored.reject(BOB)
    kept.check_send([BOB])
    assert kept.observe(BOB, bob_new)[1] is Observation.CHANGED
    with pytest.raises(InvalidHeader):
        kept.reject(BOB)
    with pytest.raises(InvalidHeader):
        ContactTrust().accept(BOB, bob_new)
    with pytest.raises(UnsupportedVersion):
        ContactTrust.from_dict({**trust.to_dict(), "v": 2})


def test_unreachable_devices_are_reported() -> None:
    intended = [f"{BOB}|B1", f"{BOB}|B2", f"{CAROL}|C1"]
    assert delivery_report(intended, [f"{BOB}|B1", f"{CAROL}|C1"]) == [f"{BOB}|B2"]
    assert delivery_report(intended, intended) == []

"""Shared builders for the crypto tests."""

from __future__ import annotations

from common.crypto import (
    IdentityKeyPair,
    OneTimePreKey,
    PreKeyBundle,
    Session,
    SignedPreKey,
)
from common.crypto.session import PreKeyMessage

ALICE, BOB = "@alice:example.org", "@bob:example.org"


def session_pair(with_otk: bool = True) -> tuple[Session, Session]:
    """A pair where Bob has accepted Alice's first message and replied once."""
    a_ik, b_ik = IdentityKeyPair.generate(), IdentityKeyPair.generate()
    spk = SignedPreKey.generate(1)
    otk = OneTimePreKey.generate(9) if with_otk else None
    alice = Session.initiate(a_ik, PreKeyBundle.create(b_ik, BOB, "BOBDEV", spk, otk))
    first = alice.encrypt(b"hello")
    assert isinstance(first, PreKeyMessage)
    bob = Session.accept(b_ik, first, ALICE, "ALICEDEV", [spk], lambda _i: otk).session
    assert alice.decrypt(bob.encrypt(b"hi")) == b"hi"
    return alice, bob

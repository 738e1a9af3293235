"""Pairing SAS: both screens agree when honest, differ under a man in the middle."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto import InvalidKey
from common.crypto import primitives as P
from common.crypto.sas import (
    PairingAgreement,
    PairingTranscript,
    SasMismatch,
    SasNotConfirmed,
    sas_decimal,
    sas_emoji_indices,
)

USER, CODE = "@alice:example.org", "12345678"


def honest_pair() -> tuple[PairingAgreement, PairingAgreement]:
    new_key = P.load_x25519_private(b"\x11" * 32)
    old_key = P.load_x25519_private(b"\x22" * 32)
    t = PairingTranscript(USER, CODE, "Laptop", "PHONEDEV", P.x25519_public_bytes(new_key),
                          P.x25519_public_bytes(old_key))
    return PairingAgreement.derive(new_key, t, "new"), PairingAgreement.derive(old_key, t, "approving")


def test_honest_devices_show_the_same_code_and_get_the_same_key() -> None:
    new, old = honest_pair()
    assert new.decimal == old.decimal and new.emoji_indices == old.emoji_indices
    # Fixed keys -> fixed code (a test vector for other implementations).
    assert new.decimal_text == "6228-4995-4187"
    assert new.emoji_indices == (40, 54, 15, 38, 54, 14, 30)
    new.confirm_code(old.decimal_text.replace("-", " "))
    old.confirm(True)
    assert new.key == old.key and len(new.key) == 32


def test_man_in_the_middle_yields_different_codes() -> None:
    """The server swaps each device's view of the other's key for its own."""
    new_key, old_key = P.generate_x25519(), P.generate_x25519()
    m_to_new, m_to_old = P.generate_x25519(), P.generate_x25519()
    # The new device sees Mallory's key as the approving device's; and vice versa.
    seen_by_new = PairingTranscript(USER, CODE, "Laptop", "PHONEDEV", P.x25519_public_bytes(new_key),
                                    P.x25519_public_bytes(m_to_new))
    seen_by_old = PairingTranscript(USER, CODE, "Laptop", "PHONEDEV", P.x25519_public_bytes(m_to_old),
                                    P.x25519_public_bytes(old_key))
    new = PairingAgreement.derive(new_key, seen_by_new, "new")
    old = PairingAgreement.derive(old_key, seen_by_old, "approving")
    assert new.decimal != old.decimal
    assert new.emoji_indices != old.emoji_indices
    # Mallory can compute each side's code, but not make them equal.
    mallory_new = PairingAgreement.derive(m_to_new, seen_by_new, "approving")
    mallory_old = PairingAgreement.derive(m_to_old, seen_by_old, "new")
    assert mallory_new.decimal == new.decimal and mallory_old.decimal == old.decimal
    # The user compares and refuses: no key on either side.
    with pytest.raises(SasMismatch):
        old.confirm_code(new.decimal_text)
    with pytest.raises(SasNotConfirmed):
        _ = old.key
    with pytest.raises(SasMismatch):
        new.confirm(False)
    with pytest.raises(SasNotConfirmed):
        _ = new.key
    with pytest.raises(SasMismatch):  # a refused agreement stays refused
        new.confirm(True)


@pytest.mark.parametrize("field", ["user_id", "code", "new_device", "approving_device"])
def test_every_transcript_field_changes_the_code(field: str) -> None:
    new_key, old_key = P.generate_x25519(), P.generate_x25519()
    base = PairingTranscript(USER, CODE, "Laptop", "PHONEDEV", P.x25519_public_bytes(new_key),
                             P.x25519_public_bytes(old_key))
    changed = PairingTranscript(**{**base.__dict__, field: getattr(base, field) + "x"})
    a = PairingAgreement.derive(new_key, base, "new")
    b = PairingAgreement.derive(old_key, changed, "approving")
    assert a.sas_bytes != b.sas_bytes


def test_own_key_must_match_the_transcript() -> None:
    new_key, old_key = P.generate_x25519(), P.generate_x25519()
    t = PairingTranscript(USER, CODE, "Laptop", "PHONEDEV", P.x25519_public_bytes(new_key),
                          P.x25519_public_bytes(old_key))
    with pytest.raises(InvalidKey):
        PairingAgreement.derive(old_key, t, "new")
    with pytest.raises(InvalidKey):
        PairingTranscript(USER, CODE, "a", "b", b"short", bytes(32)).encode()
    low_order = PairingTranscript(USER, CODE, "a", "b", P.x25519_public_bytes(new_key), bytes(32))
    with pytest.raises(InvalidKey):
        PairingAgreement.derive(new_key, low_order, "new")


@settings(max_examples=200)
@given(st.binary(min_size=6, max_size=6))
def test_property_code_ranges(sas: bytes) -> None:
    assert all(1000 <= n <= 9191 for n in sas_decimal(sas))
    indices = sas_emoji_indices(sas)
    assert len(indices) == 7 and all(0 <= i < 64 for i in indices)

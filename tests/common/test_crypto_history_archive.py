"""The pairing history archive: sealed under the confirmed pairing key, tamper-evident."""

from __future__ import annotations

import pytest

from common.crypto import DecryptionFailed, IntegrityError, InvalidHeader
from common.crypto import primitives as P
from common.crypto.history_archive import (
    ArchiveDescriptor,
    decrypt_archive,
    encrypt_archive,
    open_descriptor,
    seal_descriptor,
)
from common.crypto.sas import PairingAgreement, PairingTranscript, SasNotConfirmed

ARCHIVE = {"rooms": {"!r:example.org": {"$e1": "message key one", "$e2": "message key two"}}}


def confirmed_pair() -> tuple[PairingAgreement, PairingAgreement]:
    new_key, old_key = P.generate_x25519(), P.generate_x25519()
    t = PairingTranscript("@a:example.org", "12345678", "Laptop", "PHONE",
                          P.x25519_public_bytes(new_key), P.x25519_public_bytes(old_key))
    return PairingAgreement.derive(new_key, t, "new"), PairingAgreement.derive(old_key, t, "approving")


def test_archive_travels_once_under_the_confirmed_pairing_key() -> None:
    new, old = confirmed_pair()
    with pytest.raises(SasNotConfirmed):  # nothing is sealed before the codes are compared
        _ = old.key
    old.confirm(True)
    new.confirm(True)
    ciphertext, info = encrypt_archive(ARCHIVE)
    sealed = seal_descriptor(old.key, ArchiveDescriptor("mxc://example.org/abc", info))
    assert b"message key" not in ciphertext and info.key not in sealed
    descriptor = open_descriptor(new.key, sealed)
    assert descriptor.media_id == "mxc://example.org/abc"
    assert decrypt_archive(ciphertext, descriptor) == ARCHIVE


def test_wrong_key_and_tampering_are_refused() -> None:
    new, old = confirmed_pair()
    new.confirm(True)
    old.confirm(True)
    ciphertext, info = encrypt_archive(ARCHIVE)
    sealed = seal_descriptor(old.key, ArchiveDescriptor("mxc://example.org/abc", info))
    with pytest.raises(DecryptionFailed):  # a server in the middle holds another key
        open_descriptor(P.random_bytes(32), sealed)
    flipped = bytearray(sealed)
    flipped[-1] ^= 1
    with pytest.raises(DecryptionFailed):
        open_descriptor(new.key, bytes(flipped))
    with pytest.raises(InvalidHeader):
        open_descriptor(new.key, sealed[:10])
    changed = bytearray(ciphertext)
    changed[40] ^= 1
    with pytest.raises(IntegrityError):
        decrypt_archive(bytes(changed), open_descriptor(new.key, sealed))

"""Stored crypto state and parameters that must be refused, not half-accepted (found by mutation testing)."""

from __future__ import annotations

import base64
import os

import pytest

from common.crypto import primitives as P
from common.crypto.double_ratchet import DoubleRatchet
from common.crypto.envelope import KDF_PBKDF2_SHA256, KDF_SCRYPT, KdfParams
from common.crypto.errors import (
    DecryptionFailed,
    InvalidHeader,
    InvalidKey,
    UnsupportedVersion,
    WeakParameters,
)
from common.crypto.sender_keys import InboundSenderKey, OutboundSenderKey
from tests.common.test_crypto_double_ratchet import pair


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode().rstrip("=")


@pytest.mark.parametrize("item", [
    ["KEY", "1", "MK"],  # the message number is not an integer
    ["KEY", 1],  # too short
    ["KEY", 1, "MK", "extra"],  # too long
    "KEY",  # not a list
])
def test_ratchet_state_with_a_malformed_skipped_key_is_refused(item: object) -> None:
    a, _ = pair()
    key, mk = _b64(os.urandom(32)), _b64(os.urandom(32))
    if isinstance(item, list):
        item = [key if v == "KEY" else mk if v == "MK" else v for v in item]
    with pytest.raises(InvalidHeader):
        DoubleRatchet.from_dict({**a.to_dict(), "skipped": [item]})
    # The same entry, well formed, is accepted.
    restored = DoubleRatchet.from_dict({**a.to_dict(), "skipped": [[key, 1, mk]]})
    assert restored.to_dict()["skipped"] == [[key, 1, mk]]


@pytest.mark.parametrize("kdf_id", [0, 3, 255])
def test_unknown_kdf_ids_are_unsupported_not_treated_as_a_known_one(kdf_id: int) -> None:
    assert kdf_id not in (KDF_PBKDF2_SHA256, KDF_SCRYPT)
    with pytest.raises(UnsupportedVersion):
        KdfParams(kdf_id).check(allow_weak=True)
    KdfParams.scrypt(10, 8, 1).check(allow_weak=True)


@pytest.mark.parametrize("item", [
    ["1", "SEED"],  # the iteration is not an integer
    [1],  # too short
    [1, "SEED", "extra"],  # too long
    1,  # not a list
])
def test_sender_key_state_with_a_malformed_skipped_key_is_refused(item: object) -> None:
    out = OutboundSenderKey.create()
    stored = InboundSenderKey.from_distribution(out.distribution()).to_dict()
    seed = _b64(os.urandom(32))
    if isinstance(item, list):
        item = [seed if v == "SEED" else v for v in item]
    with pytest.raises(InvalidHeader, match="malformed skipped key"):
        InboundSenderKey.from_dict({**stored, "skipped": [item]})
    # The same entry, well formed, is accepted.
    restored = InboundSenderKey.from_dict({**stored, "skipped": [[1, seed]]})
    assert restored.to_dict()["skipped"] == [[1, seed]]


def test_scrypt_below_its_floor_needs_allow_weak() -> None:
    """The floor is N = 2**17 and r = 8: either below it is weak; both at it is not."""
    KdfParams.scrypt(17, 8, 1).check()
    for weak in ((16, 8, 1), (17, 7, 1), (16, 7, 1)):
        with pytest.raises(WeakParameters, match="below the floor"):
            KdfParams.scrypt(*weak).check()
        KdfParams.scrypt(*weak).check(allow_weak=True)


@pytest.mark.parametrize(("key_len", "nonce_len"), [(16, 12), (24, 12), (31, 12), (33, 12), (32, 8), (32, 11),
                                                     (32, 13), (32, 16), (16, 8)])
def test_aes_gcm_takes_only_32_byte_keys_and_12_byte_nonces(key_len: int, nonce_len: int) -> None:
    """AES-128/192 keys and other nonce sizes, which the library itself would accept, are refused."""
    sealed = P.aes_gcm_encrypt(bytes(32), bytes(12), b"x")
    with pytest.raises(InvalidKey, match="32-byte key and a 12-byte nonce"):
        P.aes_gcm_encrypt(bytes(key_len), bytes(nonce_len), b"x")
    with pytest.raises(InvalidKey, match="32-byte key and a 12-byte nonce"):
        P.aes_gcm_decrypt(bytes(key_len), bytes(nonce_len), sealed)


def test_aes_gcm_opens_a_bare_tag() -> None:
    """An empty plaintext seals to the 16-byte tag alone, which opens (one byte less does not)."""
    sealed = P.aes_gcm_encrypt(bytes(32), bytes(12), b"")
    assert len(sealed) == P.TAG_LEN
    assert P.aes_gcm_decrypt(bytes(32), bytes(12), sealed) == b""
    with pytest.raises(DecryptionFailed, match="shorter than the GCM tag"):
        P.aes_gcm_decrypt(bytes(32), bytes(12), sealed[:-1])

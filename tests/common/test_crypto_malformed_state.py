"""Stored crypto state and parameters that must be refused, not half-accepted (found by mutation testing)."""

from __future__ import annotations

import base64
import os

import pytest

from common.crypto.double_ratchet import DoubleRatchet
from common.crypto.envelope import KDF_PBKDF2_SHA256, KDF_SCRYPT, KdfParams
from common.crypto.errors import InvalidHeader, UnsupportedVersion
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

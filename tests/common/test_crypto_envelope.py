"""Password envelopes and local-storage encryption."""

from __future__ import annotations

import hashlib

import pytest

from common.crypto import IdentityKeyPair
from common.crypto import primitives as P
from common.crypto.envelope import (
    DEFAULT_KDF,
    KdfParams,
    decrypt_local,
    decrypt_with_password,
    derive_local_storage_key,
    encrypt_local,
    encrypt_with_password,
    envelope_params,
    needs_upgrade,
    open_identity,
    seal_identity,
)
from common.crypto.errors import (
    DecryptionFailed,
    InvalidHeader,
    UnsupportedVersion,
    WeakParameters,
    WrongPassword,
)

H = bytes.fromhex
# Sealed once with the real default (PBKDF2-SHA256, 600,000 iterations).
REAL_BLOB = H(
    "50524c590101000927c084a16fee07333ecb0da3f7e5b9715ed9f10ee22db8ade69260aad9b0a13b"
    "cc7cd1d1db355ec0c093d0b1c40fa89a6505e91e7fcc224401da14"
)
WEAK = KdfParams.pbkdf2(1000)


def test_real_blob_opens_and_header_layout() -> None:
    assert REAL_BLOB[:4] == b"PRLY" and REAL_BLOB[4] == 1
    assert envelope_params(REAL_BLOB) == KdfParams.pbkdf2(600_000) == DEFAULT_KDF
    assert decrypt_with_password(REAL_BLOB, "hunter2") == b"real envelope"
    assert not needs_upgrade(REAL_BLOB)


def test_independent_decryption_of_real_blob() -> None:
    salt, nonce, ct = REAL_BLOB[10:26], REAL_BLOB[26:38], REAL_BLOB[38:]
    key = hashlib.pbkdf2_hmac("sha256", b"hunter2", salt, 600_000)
    assert P.aes_gcm_decrypt(key, nonce, ct, REAL_BLOB[:38]) == b"real envelope"


def test_wrong_password_and_tampering() -> None:
    blob = encrypt_with_password(b"secret", "pw", params=WEAK, allow_weak=True)
    assert decrypt_with_password(blob, "pw", allow_weak=True) == b"secret"
    with pytest.raises(WrongPassword):
        decrypt_with_password(blob, "PW", allow_weak=True)
    for pos in (len(blob) - 1, 12, 30):  # tag, salt, nonce
        bad = bytearray(blob)
        bad[pos] ^= 1
        with pytest.raises(WrongPassword):
            decrypt_with_password(bytes(bad), "pw", allow_weak=True)


def test_floor_and_ceiling() -> None:
    blob = encrypt_with_password(b"s", "pw", params=WEAK, allow_weak=True)
    with pytest.raises(WeakParameters):
        decrypt_with_password(blob, "pw")  # below the floor without allow_weak
    with pytest.raises(WeakParameters):
        encrypt_with_password(b"s", "pw", params=WEAK)
    with pytest.raises(WeakParameters):
        KdfParams.pbkdf2(2**31).check()
    assert needs_upgrade(blob)


def test_format_errors() -> None:
    blob = encrypt_with_password(b"s", "pw", params=WEAK, allow_weak=True)
    with pytest.raises(InvalidHeader):
        decrypt_with_password(b"ECP1" + blob[4:], "pw")
    with pytest.raises(UnsupportedVersion):
        decrypt_with_password(blob[:4] + b"\x02" + blob[5:], "pw")
    with pytest.raises(UnsupportedVersion):
        decrypt_with_password(blob[:5] + b"\x09" + blob[6:], "pw")
    with pytest.raises(InvalidHeader):
        decrypt_with_password(blob[:30], "pw")


def test_scrypt_envelope() -> None:
    params = KdfParams.scrypt(log2_n=10, r=8, p=1)
    blob = encrypt_with_password(b"s", "pw", params=params, allow_weak=True)
    assert envelope_params(blob) == params
    assert decrypt_with_password(blob, "pw", allow_weak=True) == b"s"
    with pytest.raises(WeakParameters):
        decrypt_with_password(blob, "pw")
    with pytest.raises(WeakParameters):
        KdfParams.scrypt(log2_n=20, r=32).check()  # 4 GiB of memory


def test_password_normalisation() -> None:
    blob = encrypt_with_password(b"s", "caf\u00e9", params=WEAK, allow_weak=True)
    assert decrypt_with_password(blob, "cafe\u0301", allow_weak=True) == b"s"


def test_seal_identity() -> None:
    ik = IdentityKeyPair.generate()
    blob = seal_identity(ik, "pw", params=WEAK, allow_weak=True)
    assert open_identity(blob, "pw", allow_weak=True).public == ik.public


def test_local_storage_key_vector_and_records() -> None:
    ik = IdentityKeyPair.from_seed(bytes(range(32)))
    key = derive_local_storage_key(ik, "sessions")
    assert key == H("e40e24e70bfe1f5d53e99b56c981aa40b206076a31dec9ecd4347957707d2c27")
    assert key == P.hkdf_sha256(
        bytes(range(32)), salt=b"Parley local storage", info=b"Parley local storage v1:sessions",
        length=32,
    )
    assert derive_local_storage_key(ik, "sender_keys") != key
    rec = encrypt_local(key, b"row", context=b"id-1")
    assert rec[:5] == b"PRLL\x01"
    assert decrypt_local(key, rec, context=b"id-1") == b"row"
    with pytest.raises(DecryptionFailed):
        decrypt_local(key, rec, context=b"id-2")  # records cannot be swapped
    with pytest.raises(DecryptionFailed):
        decrypt_local(derive_local_storage_key(ik, "message_cache"), rec, context=b"id-1")
    with pytest.raises(UnsupportedVersion):
        decrypt_local(key, rec[:4] + b"\x02" + rec[5:], context=b"id-1")
    with pytest.raises(InvalidHeader):
        decrypt_local(key, rec[:10])

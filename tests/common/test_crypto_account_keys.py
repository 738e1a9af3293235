"""Format-2 account keys: independent keys, rotation, recovery key, legacy opening."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from common.crypto import (
    IdentityKeyPair,
    InvalidHeader,
    InvalidKey,
    KdfParams,
    UnsupportedVersion,
    WrongPassword,
    derive_local_storage_key,
    seal_identity,
)
from common.crypto import primitives as P
from common.crypto.account_keys import (
    AccountKeys,
    LegacyKeys,
    decode_recovery_key,
    encode_recovery_key,
    migrate_legacy,
    open_sealed_keys,
    seal_account_keys,
)

WEAK = KdfParams.pbkdf2(1000)
LEGACY_PURPOSES = ["index", "record:sessions", "record:secrets", "record:messages", "login key",
                   "history", "sessions", "sender_keys", "message_cache"]


def test_keys_are_independent_of_the_identity() -> None:
    keys = AccountKeys.generate()
    derived = {derive_local_storage_key(keys.identity_seed, p) for p in LEGACY_PURPOSES}
    assert keys.storage_key not in derived and keys.login_seed not in derived
    assert keys.login_public != keys.identity.public.ed25519
    # Nothing derived from the storage key gives the identity or login key, either.
    from_storage = {derive_local_storage_key(keys.storage_key, p) for p in LEGACY_PURPOSES}
    assert keys.identity_seed not in from_storage and keys.login_seed not in from_storage
    assert len({keys.identity_seed, keys.storage_key, keys.login_seed}) == 3


def test_backup_is_opt_in_and_rotates() -> None:
    keys = AccountKeys.generate()
    assert keys.backup is None and keys.rotate_backup() == keys  # off stays off
    on = keys.enable_backup()
    assert on.backup is not None and on.backup.version == 1
    rotated = on.rotate_backup()
    assert rotated.backup is not None and rotated.backup.version == 2
    assert rotated.backup.key != on.backup.key
    # Rotating the backup leaves every other key alone.
    assert (rotated.identity_seed, rotated.storage_key, rotated.login_seed) == (
        keys.identity_seed, keys.storage_key, keys.login_seed)
    relogged = rotated.rotate_login()
    assert relogged.login_seed != rotated.login_seed and relogged.backup == rotated.backup
    assert rotated.disable_backup().backup is None


def test_container_round_trip_and_seal() -> None:
    keys = AccountKeys.generate().enable_backup()
    assert AccountKeys.from_dict(keys.to_dict()) == keys
    blob = seal_account_keys(keys, "pw", params=WEAK, allow_weak=True)
    assert open_sealed_keys(blob, "pw", allow_weak=True) == keys
    with pytest.raises(WrongPassword):
        open_sealed_keys(blob, "nope", allow_weak=True)
    d = keys.to_dict()
    with pytest.raises(UnsupportedVersion):
        AccountKeys.from_dict({**d, "v": 2})
    with pytest.raises(InvalidHeader):
        AccountKeys.from_dict({**d, "store_format": 1})
    with pytest.raises(InvalidKey):  # a container whose keys coincide is refused
        AccountKeys.from_dict({**d, "storage_key": d["identity_seed"]})


def test_legacy_envelope_opens_as_legacy_and_migrates() -> None:
    identity = IdentityKeyPair.from_seed(bytes(range(32)))
    blob = seal_identity(identity, "pw", params=WEAK, allow_weak=True)
    legacy = open_sealed_keys(blob, "pw", allow_weak=True)
    assert isinstance(legacy, LegacyKeys) and legacy.identity_seed == identity.seed
    # Format 1 derived everything from the seed -- these are today's exact derivations.
    assert legacy.login_seed == derive_local_storage_key(identity, "login key")
    assert legacy.store_key("index") == derive_local_storage_key(identity, "index")
    migrated = migrate_legacy(legacy)
    assert migrated.identity_seed == identity.seed  # contacts keep their safety numbers
    assert migrated.storage_key not in {legacy.store_key(p) for p in LEGACY_PURPOSES}
    assert migrated.login_seed != legacy.login_seed and migrated.backup is None
    assert migrate_legacy(legacy, keep_backup=True).backup is not None


def test_recovery_key_text() -> None:
    key = bytes(range(32))
    text = encode_recovery_key(key)
    groups = text.split(" ")
    assert len(groups) == 14 and all(len(g) == 4 for g in groups)
    assert decode_recovery_key(text) == key
    assert decode_recovery_key(text.lower().replace(" ", "-")) == key
    wrong = ("1" if text[0] != "1" else "2") + text[1:]
    with pytest.raises(InvalidKey):
        decode_recovery_key(wrong)
    with pytest.raises(InvalidKey):
        decode_recovery_key(text[:-4])


@settings(max_examples=300)
@given(st.binary(min_size=32, max_size=32), st.integers(min_value=0, max_value=55),
       st.sampled_from("0123456789ABCDEFGHJKMNPQRSTVWXYZ"))
def test_property_recovery_key_catches_one_changed_character(
        key: bytes, position: int, char: str) -> None:
    text = encode_recovery_key(key).replace(" ", "")
    assert decode_recovery_key(text) == key
    changed = text[:position] + char + text[position + 1:]
    if changed != text:
        with pytest.raises(InvalidKey):
            decode_recovery_key(changed)


def test_ed25519_login_key_is_usable() -> None:
    keys = AccountKeys.generate()
    signature = keys.login_key.sign(b"challenge")
    P.load_ed25519_public(keys.login_public).verify(signature, b"challenge")


def test_every_single_character_error_is_caught_exhaustively() -> None:
    alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
    for key in (bytes(32), bytes(range(32)), b"\xff" * 32):
        text = encode_recovery_key(key).replace(" ", "")
        for position in range(len(text)):
            for char in alphabet:
                if char != text[position]:
                    with pytest.raises(InvalidKey):
                        decode_recovery_key(text[:position] + char + text[position + 1:])

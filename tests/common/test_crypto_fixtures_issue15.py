"""Stored issue-15 formats (fixtures/issue15_v1.json, written once) keep loading and working."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from common.crypto import (
    IdentityKeyPair,
    Session,
    SignedPreKey,
    UnsupportedVersion,
    decode_message,
)
from common.crypto import primitives as P
from common.crypto.account_keys import AccountKeys, decode_recovery_key, open_sealed_keys
from common.crypto.key_backup import open_backup_entry
from common.crypto.pqxdh import KemPreKey
from common.crypto.replay import ReplayedMessage, ReplayGuard
from common.crypto.session import PreKeyMessage
from common.crypto.trust import ContactTrust, SafetyNumberChanged
from tests.common.fixtures.generate_issue15_v1 import PASSWORD

FIXTURE: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "issue15_v1.json").read_text())


def test_account_keys_and_backup() -> None:
    keys = AccountKeys.from_dict(FIXTURE["account_keys"])
    assert keys.identity_seed == bytes(range(32)) and keys.backup is not None
    assert open_sealed_keys(bytes.fromhex(FIXTURE["sealed_account_keys"]), PASSWORD,
                            allow_weak=True) == keys
    assert decode_recovery_key(FIXTURE["recovery_key"]) == keys.backup.key
    assert open_backup_entry(keys.backup, "!r:example.org", "$e1", FIXTURE["backup_entry"]) == b"k" * 32


def test_replay_guard_and_trust() -> None:
    guard = ReplayGuard.from_dict(FIXTURE["replay_guard"])
    for seen in (3, 5):
        with pytest.raises(ReplayedMessage):
            guard.accept("LAPTOP", seen)
    guard.accept("LAPTOP", 4)
    trust = ContactTrust.from_dict(FIXTURE["contact_trust"])
    with pytest.raises(SafetyNumberChanged):
        trust.check_send(["@bob:example.org"])


def test_pq_session_resumes_and_first_message_opens() -> None:
    alice = Session.from_dict(FIXTURE["pq_session_initiator"])
    bob = IdentityKeyPair.from_seed(bytes(range(128, 160)))
    spk = SignedPreKey(1, P.load_x25519_private(bytes(range(160, 192))), 1_700_000_000_000)
    kem = KemPreKey.from_dict(FIXTURE["bob_kem_last_resort"])
    first = decode_message(FIXTURE["pq_first_message"])
    assert isinstance(first, PreKeyMessage)
    result = Session.accept(bob, first, "@alice:example.org", "A", [spk], lambda _i: None,
                            lambda key_id, last: kem if (key_id, last) == (4, True) else None,
                            require_pq=True)
    assert result.plaintext == b"pending pq message"
    second = alice.encrypt(b"after the restart")
    assert isinstance(second, PreKeyMessage)  # still pending: Bob has not answered yet
    assert result.session.decrypt(second) == b"after the restart"
    assert alice.decrypt(result.session.encrypt(b"reply")) == b"reply"


@pytest.mark.parametrize("name,cls", [("account_keys", AccountKeys), ("replay_guard", ReplayGuard),
                                      ("contact_trust", ContactTrust), ("bob_kem_last_resort", KemPreKey),
                                      ("pq_session_initiator", Session)])
def test_future_versions_refused(name: str, cls: Any) -> None:
    with pytest.raises(UnsupportedVersion):
        cls.from_dict({**FIXTURE[name], "v": 2})

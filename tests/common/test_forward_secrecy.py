"""Forward secrecy of the pairwise protocol, shown by compromising a device.

The attacker is the server (it stores every ciphertext) who later obtains
*everything* a device has stored: its identity key, its signed pre-key, its
last-resort KEM key, every unused one-time key, and the serialised sessions.
What the attacker can read from that is exactly what these tests assert; the
same statements are in ``docs/SECURITY-MODEL.md``.  (This is the protocol
layer, without the client's ``self`` copies and key backup -- see that
document for what the client still adds today.)
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.crypto import (
    CryptoError,
    IdentityKeyPair,
    KemPreKey,
    OneTimePreKey,
    PQPreKeyBundle,
    Session,
    SignedPreKey,
    decode_message,
    encode_message,
)
from common.crypto import primitives as P
from common.crypto.account_keys import AccountKeys, BackupKey
from common.crypto.key_backup import open_backup_entry, seal_backup_entry
from common.crypto.session import PreKeyMessage

ALICE, BOB = "@alice:example.org", "@bob:example.org"


@dataclass
class Device:
    """Bob's device and the secrets it keeps (one-time keys are deleted after use)."""

    identity: IdentityKeyPair = field(default_factory=IdentityKeyPair.generate)
    spk: SignedPreKey = field(default_factory=lambda: SignedPreKey.generate(1))
    last_resort: KemPreKey = field(default_factory=lambda: KemPreKey.generate(1, last_resort=True))
    otks: dict[int, OneTimePreKey] = field(default_factory=dict)
    kems: dict[int, KemPreKey] = field(default_factory=dict)

    def kem(self, key_id: int, last_resort: bool) -> KemPreKey | None:
        return self.last_resort if last_resort and key_id == self.last_resort.key_id else (
            None if last_resort else self.kems.get(key_id))

    def stored_secrets(self, session: Session) -> dict[str, Any]:
        """All of it, serialised: what a stolen disk (with the password) gives."""
        stolen: dict[str, Any] = json.loads(json.dumps({
            "identity": self.identity.to_dict(), "spk": self.spk.to_dict(),
            "last_resort": self.last_resort.to_dict(),
            "otks": [k.to_dict() for k in self.otks.values()],
            "kems": [k.to_dict() for k in self.kems.values()],
            "session": session.to_dict()}))
        return stolen


def attacker_reads(secrets: dict[str, Any], wire: dict[str, Any]) -> bytes | None:
    """Everything the attacker can try with the stolen secrets on one stored ciphertext."""
    message = decode_message(copy.deepcopy(wire))
    session = Session.from_dict(secrets["session"])
    try:
        return session.decrypt(message)
    except CryptoError:
        pass
    if isinstance(message, PreKeyMessage):  # recompute the handshake from the held pre-keys
        identity = IdentityKeyPair.from_dict(secrets["identity"])
        spk = SignedPreKey.from_dict(secrets["spk"])
        otks = {k["key_id"]: OneTimePreKey.from_dict(k) for k in secrets["otks"]}
        kems = {k["key_id"]: KemPreKey.from_dict(k) for k in secrets["kems"]}
        last_resort = KemPreKey.from_dict(secrets["last_resort"])

        def kem(key_id: int, is_last_resort: bool) -> KemPreKey | None:
            if is_last_resort:
                return last_resort if key_id == last_resort.key_id else None
            return kems.get(key_id)

        try:
            return Session.accept(identity, message, ALICE, "A", [spk], otks.get, kem).plaintext
        except CryptoError:
            return None
    return None


def start(bob: Device, with_one_time_keys: bool) -> tuple[Session, Session, list[dict[str, Any]]]:
    """Alice opens a PQXDH session; the returned list is what the server stored."""
    if with_one_time_keys:
        bob.otks = {k: OneTimePreKey.generate(k) for k in (1, 2)}
        bob.kems = {k: KemPreKey.generate(k) for k in (11, 12)}
        bundle = PQPreKeyBundle.create(bob.identity, BOB, "B", bob.spk, bob.kems[11], bob.otks[1])
    else:
        bundle = PQPreKeyBundle.create(bob.identity, BOB, "B", bob.spk, bob.last_resort)
    alice = Session.initiate_pqxdh(IdentityKeyPair.generate(), bundle)
    first = encode_message(alice.encrypt(b"m1: before anything"))
    stored = [first]
    pre = decode_message(first)
    assert isinstance(pre, PreKeyMessage)
    result = Session.accept(bob.identity, pre, ALICE, "A", [bob.spk], bob.otks.get, bob.kem)
    assert result.plaintext == b"m1: before anything"
    # Commit-on-success deletes the one-time keys the handshake used (X3DH §3.4).
    if result.one_time_prekey_id is not None:
        del bob.otks[result.one_time_prekey_id]
    if result.kem_prekey_id is not None and not result.kem_last_resort:
        del bob.kems[result.kem_prekey_id]
    return alice, result.session, stored


def exchange(sender: Session, receiver: Session, stored: list[dict[str, Any]], text: bytes) -> None:
    wire = encode_message(sender.encrypt(text))
    stored.append(wire)
    assert receiver.decrypt(decode_message(copy.deepcopy(wire))) == text


def test_compromise_reveals_nothing_sent_or_received_before_the_last_ratchet_step() -> None:
    bob = Device()
    alice, bob_session, stored = start(bob, with_one_time_keys=True)
    exchange(alice, bob_session, stored, b"m2")
    exchange(bob_session, alice, stored, b"r1: Bob's reply, a DH ratchet step")
    exchange(alice, bob_session, stored, b"m3")
    exchange(bob_session, alice, stored, b"r2")
    exchange(alice, bob_session, stored, b"m4: in the chain current at the compromise")
    secrets = bob.stored_secrets(bob_session)
    # Nothing the server stored decrypts with everything Bob's device holds -- received
    # (m1..m4) and sent (r1, r2) alike; m4 is in the current chain but its key is used up.
    for wire in stored:
        assert attacker_reads(secrets, wire) is None

    # Future messages in the current receiving chain are readable (no ratchet step yet) ...
    wire = encode_message(alice.encrypt(b"m5: same chain, after the compromise"))
    assert attacker_reads(secrets, wire) == b"m5: same chain, after the compromise"
    assert bob_session.decrypt(decode_message(wire)) == b"m5: same chain, after the compromise"
    # Bob's current ratchet key was stolen too: his next reply and Alice's answer to it
    # still rest on it ...
    exchange(bob_session, alice, stored, b"r3: sent with the stolen ratchet key")
    wire = encode_message(alice.encrypt(b"m6: answers r3"))
    assert attacker_reads(secrets, wire) == b"m6: answers r3"
    assert bob_session.decrypt(decode_message(wire)) == b"m6: answers r3"
    # ... until Bob's next DH ratchet step (a fresh key made after the compromise) heals the
    # session against a passive attacker: one round trip after the compromise.
    exchange(bob_session, alice, stored, b"r4: a fresh ratchet key the attacker never saw")
    wire = encode_message(alice.encrypt(b"m7: after healing"))
    assert attacker_reads(secrets, wire) is None
    assert bob_session.decrypt(decode_message(wire)) == b"m7: after healing"


def test_compromise_of_the_sender_reveals_nothing_it_sent() -> None:
    bob = Device()
    alice, bob_session, stored = start(bob, with_one_time_keys=True)
    exchange(alice, bob_session, stored, b"m2")
    exchange(bob_session, alice, stored, b"r1")
    exchange(alice, bob_session, stored, b"m3")
    alice_state = json.loads(json.dumps(alice.to_dict()))
    for wire in stored:
        message = decode_message(copy.deepcopy(wire))
        with pytest.raises(CryptoError):  # own sent messages and received ones alike
            Session.from_dict(alice_state).decrypt(message)


def test_last_resort_keys_leave_the_first_chain_readable_until_rotated() -> None:
    """Without one-time keys the handshake rests on keys the device still holds:
    a compromise (before the signed pre-key and last-resort KEM key rotate) reads
    the first messages of the session -- the first chain only."""
    bob = Device()
    alice, bob_session, stored = start(bob, with_one_time_keys=False)
    exchange(alice, bob_session, stored, b"m2: still in the first chain")
    exchange(bob_session, alice, stored, b"r1: Bob's reply")
    exchange(alice, bob_session, stored, b"m3: after a ratchet step")
    secrets = bob.stored_secrets(bob_session)
    readable = [attacker_reads(secrets, wire) for wire in stored]
    # Alice's messages before Bob's reply are pre-key messages: the handshake recomputed
    # from the held pre-keys opens them; nothing after the first ratchet step opens.
    assert readable == [b"m1: before anything", b"m2: still in the first chain", None, None]
    # Rotating the signed pre-key and the last-resort KEM key (and deleting the old
    # ones after the grace period) closes even that.
    secrets["spk"] = SignedPreKey.generate(2).to_dict()
    secrets["last_resort"] = KemPreKey.generate(2, last_resort=True).to_dict()
    assert attacker_reads(secrets, stored[0]) is None


def test_with_backup_on_every_backed_up_key_is_readable_until_rotation() -> None:
    """The opt-in backup is a deliberate exception: the backup key opens all it sealed."""
    keys = AccountKeys.generate().enable_backup()
    assert keys.backup is not None
    room = "!room:example.org"
    message_keys = {f"$e{i}": P.random_bytes(32) for i in range(5)}
    server_store = {event: seal_backup_entry(keys.backup, room, event, key)
                    for event, key in message_keys.items()}
    stolen = BackupKey.from_dict(json.loads(json.dumps(keys.backup.to_dict())))
    # Everything sealed under the stolen key opens: the whole backed-up history.
    assert {e: open_backup_entry(stolen, room, e, entry) for e, entry in server_store.items()} == message_keys
    # Entries are bound to their event and room: the server cannot move them.
    with pytest.raises(CryptoError):
        open_backup_entry(stolen, room, "$e1", server_store["$e0"])
    with pytest.raises(CryptoError):
        open_backup_entry(stolen, "!other:example.org", "$e0", server_store["$e0"])
    # A device is removed: the backup rotates; what is sealed afterwards stays closed to it.
    rotated = keys.rotate_backup()
    assert rotated.backup is not None and rotated.backup.version == 2
    later = seal_backup_entry(rotated.backup, room, "$e9", P.random_bytes(32))
    with pytest.raises(CryptoError):
        open_backup_entry(stolen, room, "$e9", later)
    forged = {**later, "backup_version": 1}  # an old version's claim does not help either
    with pytest.raises(CryptoError):
        open_backup_entry(stolen, room, "$e9", forged)
    assert len(open_backup_entry(rotated.backup, room, "$e9", later)) == 32

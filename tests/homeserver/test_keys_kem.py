"""PQXDH's signed ML-KEM pre-keys in the key service: upload, counts in /sync, claim at most once,
last-resort fallback, validation; and a PQXDH session between two clients over a real server."""

from __future__ import annotations

import asyncio
import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from common.crypto import (
    DowngradeRefused,
    IdentityKeyPair,
    KemPreKey,
    OneTimePreKey,
    PQPreKeyBundle,
    PreKeyBundle,
    Session,
    SignedPreKey,
    choose_handshake,
)
from common.crypto.pqxdh import PQXDH_ALGORITHM, kem_upload_entries
from common.crypto.session import PreKeyMessage
from homeserver.services.kem_keys import KEM_ALGORITHM
from tests.homeserver.test_keys import PARLEY_OTK, assert_error, grant
from tests.support.server import Account, RunningServer

SPK_FIELD = "im.parley.signed_pre_key"


@dataclass
class PQClient:
    """A device's real key material, as a Parley client with PQXDH holds it."""

    account: Account
    identity: IdentityKeyPair = field(default_factory=IdentityKeyPair.generate)
    spk: SignedPreKey = field(default_factory=lambda: SignedPreKey.generate(1))
    otks: dict[int, OneTimePreKey] = field(default_factory=dict)
    kems: dict[tuple[int, bool], KemPreKey] = field(default_factory=dict)

    def device_keys(self) -> dict[str, Any]:
        user, device = self.account.user_id, self.account.device_id
        obj = self.identity.device_keys(user, device)
        obj.pop("signatures")
        obj["algorithms"] = [*obj["algorithms"], PQXDH_ALGORITHM]
        obj[SPK_FIELD] = self.spk.signed_public(self.identity, user, device)
        return self.identity.sign_json(obj, user, device)

    def kem_one_time(self, first: int, count: int) -> dict[str, Any]:
        made = [KemPreKey.generate(key_id) for key_id in range(first, first + count)]
        self.kems.update({(k.key_id, False): k for k in made})
        return kem_upload_entries(made, self.identity, self.account.user_id, self.account.device_id)

    def last_resort(self, key_id: int) -> dict[str, Any]:
        kem = self.kems[(key_id, True)] = KemPreKey.generate(key_id, last_resort=True)
        return kem_upload_entries([kem], self.identity, self.account.user_id, self.account.device_id)

    def x25519_one_time(self, count: int) -> dict[str, Any]:
        out = {}
        for key_id in range(1, count + 1):
            otk = self.otks[key_id] = OneTimePreKey.generate(key_id)
            out[f"{PARLEY_OTK}:{key_id}"] = otk.signed_public(
                self.identity, self.account.user_id, self.account.device_id)
        return out


async def upload(server: RunningServer, account: Account, body: dict[str, Any]) -> Any:
    return await server.api("POST", "keys/upload", account, json=body)


async def claim(server: RunningServer, asker: Account, owner: Account, algorithm: str) -> dict[str, Any] | None:
    response = await server.api("POST", "keys/claim", asker, json={
        "one_time_keys": {owner.user_id: {owner.device_id: algorithm}}})
    assert response.status_code == 200, response.text
    got: dict[str, Any] | None = response.json()["one_time_keys"].get(owner.user_id, {}).get(owner.device_id)
    return got


async def setup(server: RunningServer, kem_otks: int = 3) -> tuple[Account, PQClient]:
    alice = await server.register()
    bob = PQClient(await server.register())
    response = await upload(server, bob.account, {
        "device_keys": bob.device_keys(), "one_time_keys": {
            **bob.x25519_one_time(2), **bob.kem_one_time(1, kem_otks)},
        "fallback_keys": bob.last_resort(100)})
    assert response.status_code == 200, response.text
    assert response.json()["one_time_key_counts"][KEM_ALGORITHM] == kem_otks
    await grant(server, alice, bob.account)
    return alice, bob


async def test_pqxdh_session_between_two_clients_over_the_server(server: RunningServer) -> None:
    alice, bob = await setup(server)
    alice_identity = IdentityKeyPair.generate()
    queried = await server.api("POST", "keys/query", alice, json={"device_keys": {bob.account.user_id: []}})
    device_keys = queried.json()["device_keys"][bob.account.user_id][bob.account.device_id]
    otk = await claim(server, alice, bob.account, PARLEY_OTK)
    kem = await claim(server, alice, bob.account, KEM_ALGORITHM)
    assert otk is not None and kem is not None
    ((kem_name, kem_obj),) = kem.items()
    assert kem_obj["usage"] == "kem_prekey"  # a one-time KEM key while there are some
    bundle_json = {**PreKeyBundle(bob.account.user_id, bob.account.device_id, bob.identity.public,
                                  device_keys[SPK_FIELD], next(iter(otk.values()))).to_dict(),
                   "type": "pq_prekey_bundle", "kem_prekey": kem_obj}
    assert choose_handshake(device_keys, bundle_json) == "pqxdh"
    session = Session.initiate_pqxdh(alice_identity, PQPreKeyBundle.from_dict(bundle_json))
    first = session.encrypt(b"hello, post-quantum Bob")
    assert isinstance(first, PreKeyMessage)

    result = Session.accept(
        bob.identity, first, alice.user_id, alice.device_id, [bob.spk], bob.otks.get,
        lambda key_id, last_resort: bob.kems.get((key_id, last_resort)), require_pq=True)
    assert result.plaintext == b"hello, post-quantum Bob"
    assert f"{KEM_ALGORITHM}:{result.kem_prekey_id}" == kem_name and not result.kem_last_resort
    assert session.decrypt(result.session.encrypt(b"hi Alice")) == b"hi Alice"

    # A server that withholds the KEM key cannot make Alice fall back to X3DH.
    stripped = {k: v for k, v in bundle_json.items() if k != "kem_prekey"} | {"type": "prekey_bundle"}
    with pytest.raises(DowngradeRefused):
        choose_handshake(device_keys, stripped)


async def test_kem_keys_claimed_at_most_once_then_last_resort(server: RunningServer) -> None:
    alice, bob = await setup(server, kem_otks=10)
    claimers = [alice] + [await server.register() for _ in range(3)]
    for claimer in claimers[1:]:
        await grant(server, claimer, bob.account)
    results = await asyncio.gather(*(claim(server, claimers[i % 4], bob.account, KEM_ALGORITHM)
                                     for i in range(30)))
    one_time = [r for r in results if r and next(iter(r.values()))["usage"] == "kem_prekey"]
    last = [r for r in results if r and next(iter(r.values()))["usage"] == "kem_last_resort_prekey"]
    assert len(one_time) == 10 and len({next(iter(r)) for r in one_time}) == 10  # each once
    assert len(last) == 20 and {next(iter(r)) for r in last} == {f"{KEM_ALGORITHM}:100"}

    synced = (await server.api("GET", "sync", bob.account, params={"timeout": 0})).json()
    assert synced["device_one_time_keys_count"].get(KEM_ALGORITHM, 0) == 0
    assert KEM_ALGORITHM not in synced["device_unused_fallback_key_types"]  # handed out: replace it
    # Bob replenishes: new one-time keys and a new last-resort key.
    response = await upload(server, bob.account, {"one_time_keys": bob.kem_one_time(11, 5),
                                                  "fallback_keys": bob.last_resort(101)})
    assert response.status_code == 200, response.text
    synced = (await server.api("GET", "sync", bob.account, params={"timeout": 0})).json()
    assert synced["device_one_time_keys_count"][KEM_ALGORITHM] == 5
    assert KEM_ALGORITHM in synced["device_unused_fallback_key_types"]
    for _ in range(5):
        got = await claim(server, alice, bob.account, KEM_ALGORITHM)
        assert got is not None and next(iter(got.values()))["usage"] == "kem_prekey"
    got = await claim(server, alice, bob.account, KEM_ALGORITHM)
    assert got is not None and list(got) == [f"{KEM_ALGORITHM}:101"]


async def test_malformed_kem_keys_refused(server: RunningServer) -> None:
    _alice, bob = await setup(server)
    user, device = bob.account.user_id, bob.account.device_id
    good = KemPreKey.generate(50).signed_public(bob.identity, user, device)

    def resigned(**changes: Any) -> dict[str, Any]:
        obj = {k: v for k, v in copy.deepcopy(good).items() if k != "signatures"}
        obj.update(changes)
        return bob.identity.sign_json(obj, user, device)

    wrong_type = ("E" if good["key"][0] != "E" else "F") + good["key"][1:]  # another type byte
    cases = [
        ("one_time_keys", resigned(usage="kem_last_resort_prekey"), "usage"),  # must match the slot
        ("fallback_keys", good, "usage"),
        ("one_time_keys", resigned(key="AAAA"), "ML-KEM-1024 public key"),
        ("one_time_keys", resigned(key=good["key"][:-8]), "ML-KEM-1024 public key"),
        ("one_time_keys", resigned(key=wrong_type), "ML-KEM-1024 public key"),
        ("one_time_keys", resigned(kem="ml-kem-512"), ".kem"),
        ("one_time_keys", resigned(key_id="7"), "key_id"),
        ("one_time_keys", {k: v for k, v in good.items() if k != "signatures"}, "signature"),
        ("one_time_keys", KemPreKey.generate(51).signed_public(IdentityKeyPair.generate(), user, device),
         "signature"),
    ]
    for slot, obj, reason in cases:
        response = await upload(server, bob.account, {slot: {f"{KEM_ALGORITHM}:50": obj}})
        assert_error(response, 400, "M_INVALID_PARAM")
        assert reason in response.json()["error"], (reason, response.json()["error"])
    counts = (await upload(server, bob.account, {})).json()["one_time_key_counts"]
    assert counts[KEM_ALGORITHM] == 3  # nothing bad was stored

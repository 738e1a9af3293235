"""Cross-signing over HTTP: uploading master/self-signing/user-signing keys, signatures on
devices and other users' master keys, and what /keys/query shows to whom."""

from __future__ import annotations

import copy
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.canonical_json import sign_json, unpadded_b64encode
from tests.homeserver.test_keys import DeviceIdentity, upload
from tests.support.server import Account, RunningServer


def _pub(key: Ed25519PrivateKey) -> str:
    return unpadded_b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))


class CrossSigner:
    def __init__(self, account: Account) -> None:
        self.account = account
        self.master, self.ssk, self.usk = (Ed25519PrivateKey.generate() for _ in range(3))

    def key(self, usage: str, private: Ed25519PrivateKey) -> dict[str, Any]:
        obj: dict[str, Any] = {"user_id": self.account.user_id, "usage": [usage],
                               "keys": {f"ed25519:{_pub(private)}": _pub(private)}}
        if usage != "master":
            obj = sign_json(obj, self.account.user_id, _pub(self.master), self.master)
        return obj

    def body(self) -> dict[str, Any]:
        return {"master_key": self.key("master", self.master),
                "self_signing_key": self.key("self_signing", self.ssk),
                "user_signing_key": self.key("user_signing", self.usk)}


async def _query(server: RunningServer, asker: Account, *users: Account) -> dict[str, Any]:
    response = await server.api("POST", "keys/query", asker, json={"device_keys": {u.user_id: [] for u in users}})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _room_together(server: RunningServer, a: Account, b: Account) -> None:
    room = (await server.api("POST", "createRoom", a, json={"preset": "public_chat"})).json()["room_id"]
    assert (await server.api("POST", f"join/{room}", b, json={})).status_code == 200


async def test_upload_query_and_signatures(server: RunningServer) -> None:
    alice = await server.register(password="alice password")
    bob = await server.register()
    await _room_together(server, alice, bob)
    device = DeviceIdentity(alice)
    await upload(server, alice, {"device_keys": device.sign(device.device_keys())})
    signer = CrossSigner(alice)
    response = await server.api("POST", "keys/device_signing/upload", alice, json=signer.body())
    assert response.status_code == 200, response.text  # the first upload needs no password

    mine = await _query(server, alice, alice)
    assert mine["master_keys"][alice.user_id] == signer.key("master", signer.master)
    assert mine["self_signing_keys"][alice.user_id] == signer.key("self_signing", signer.ssk)
    assert mine["user_signing_keys"][alice.user_id] == signer.key("user_signing", signer.usk)
    theirs = await _query(server, bob, alice)
    assert alice.user_id in theirs["master_keys"] and alice.user_id in theirs["self_signing_keys"]
    assert alice.user_id not in theirs["user_signing_keys"]  # private to its owner

    # Alice's self-signing key signs her device; everyone sees that signature.
    stored = copy.deepcopy(mine["device_keys"][alice.user_id][alice.device_id])
    stored.pop("unsigned", None)
    ssk_id = _pub(signer.ssk)
    signed = sign_json(stored, alice.user_id, ssk_id, signer.ssk)
    uploaded = await server.api("POST", "keys/signatures/upload", alice,
                                json={alice.user_id: {alice.device_id: signed}})
    assert uploaded.status_code == 200 and uploaded.json() == {"failures": {}}, uploaded.text
    seen = (await _query(server, bob, alice))["device_keys"][alice.user_id][alice.device_id]
    assert seen["signatures"][alice.user_id][f"ed25519:{ssk_id}"] == signed["signatures"][alice.user_id][
        f"ed25519:{ssk_id}"]

    # Bob signs Alice's master key with his user-signing key; only Bob sees it.  (Bob's client
    # predates v1.1 and uses the unstable prefix, as SyTest does.)
    bob_signer = CrossSigner(bob)
    unstable = "/_matrix/client/unstable/keys/"
    assert (await server.api("POST", unstable + "device_signing/upload", bob,
                             json=bob_signer.body())).status_code == 200
    master = copy.deepcopy(theirs["master_keys"][alice.user_id])
    signed_master = sign_json(master, bob.user_id, _pub(bob_signer.usk), bob_signer.usk)
    ok = await server.api("POST", unstable + "signatures/upload", bob,
                          json={alice.user_id: {_pub(signer.master): signed_master}})
    assert ok.json() == {"failures": {}}, ok.text
    bob_view = (await _query(server, bob, alice))["master_keys"][alice.user_id]
    assert f"ed25519:{_pub(bob_signer.usk)}" in bob_view["signatures"][bob.user_id]
    alice_view = (await _query(server, alice, alice))["master_keys"][alice.user_id]
    assert bob.user_id not in alice_view.get("signatures", {})

    # A forged signature or an altered object is reported as a failure, not stored.
    forged = copy.deepcopy(stored)
    forged["signatures"] = {alice.user_id: {f"ed25519:{ssk_id}": signed["signatures"][alice.user_id][
        f"ed25519:{ssk_id}"][:-4] + "AAAA"}}
    altered = sign_json({**stored, "algorithms": ["evil"]}, alice.user_id, ssk_id, signer.ssk)
    for bad in (forged, altered):
        failed = await server.api("POST", "keys/signatures/upload", alice, json={alice.user_id: {alice.device_id: bad}})
        assert failed.status_code == 200
        assert failed.json()["failures"][alice.user_id][alice.device_id]["errcode"] == "M_INVALID_SIGNATURE"


async def test_bad_uploads_and_replacing_needs_the_password(server: RunningServer) -> None:
    alice = await server.register(password="alice password")
    signer = CrossSigner(alice)
    unsigned_ssk = signer.body()
    unsigned_ssk["self_signing_key"].pop("signatures")
    refused = await server.api("POST", "keys/device_signing/upload", alice, json=unsigned_ssk)
    assert refused.status_code == 400 and refused.json()["errcode"] == "M_INVALID_SIGNATURE"
    not_mine = signer.body()
    not_mine["master_key"]["user_id"] = "@mallory:example.org"
    assert (await server.api("POST", "keys/device_signing/upload", alice, json=not_mine)).status_code == 400
    assert (await server.api("POST", "keys/device_signing/upload", alice, json=signer.body())).status_code == 200
    # The same keys again: nothing to do.
    assert (await server.api("POST", "keys/device_signing/upload", alice, json=signer.body())).status_code == 200

    replacement = CrossSigner(alice)
    first = await server.api("POST", "keys/device_signing/upload", alice, json=replacement.body())
    assert first.status_code == 401
    auth = {"type": "m.login.password", "password": "alice password", "session": first.json()["session"],
            "identifier": {"type": "m.id.user", "user": alice.user_id}}
    done = await server.api("POST", "keys/device_signing/upload", alice, json={**replacement.body(), "auth": auth})
    assert done.status_code == 200, done.text
    assert (await _query(server, alice, alice))["master_keys"][alice.user_id] == replacement.key(
        "master", replacement.master)


async def test_new_cross_signing_keys_are_device_list_changes(server: RunningServer) -> None:
    """Spec, device_lists.changed: "users who have updated their device identity or
    cross-signing keys" — the uploader and everyone sharing a room with them learn of it."""
    alice, bob = await server.register(), await server.register()
    await _room_together(server, alice, bob)
    tokens = {}
    for who in (alice, bob):
        body = (await server.api("GET", "sync", who, params={"timeout": 0})).json()
        tokens[who.user_id] = body["next_batch"]
    uploaded = await server.api("POST", "keys/device_signing/upload", alice, json=CrossSigner(alice).body())
    assert uploaded.status_code == 200, uploaded.text
    for who in (alice, bob):
        later = (await server.api("GET", "sync", who, params={"timeout": 0, "since": tokens[who.user_id]})).json()
        assert alice.user_id in later["device_lists"]["changed"], (who.user_id, later["device_lists"])

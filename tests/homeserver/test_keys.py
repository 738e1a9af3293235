"""End-to-end key service: upload, query, claim, verification, rotation, device lists.

The helpers at the top (prefixed ``make_``/``upload_``) are shared by the other
``test_keys_*`` modules.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.canonical_json import sign_json, unpadded_b64encode
from homeserver.services.clock import ManualClock
from homeserver.services.sync_api import SyncToken
from tests.support.server import Account, RunningServer, serve_homeserver

PARLEY_OTK = "im.parley.signed_x25519"


def _x25519_b64() -> str:
    raw = X25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    return unpadded_b64encode(raw)


@dataclass
class DeviceIdentity:
    """A device's Ed25519 key and the helpers to sign what it uploads."""

    account: Account
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)

    @property
    def public_b64(self) -> str:
        return unpadded_b64encode(self.key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))

    def sign(self, obj: dict[str, Any]) -> dict[str, Any]:
        return sign_json(obj, self.account.user_id, self.account.device_id, self.key)

    def signed_pre_key(self, key_id: int = 1, created_ts: int | None = None) -> dict[str, Any]:
        spk: dict[str, Any] = {"usage": "signed_prekey", "key_id": key_id, "key": _x25519_b64()}
        if created_ts is not None:
            spk["created_ts"] = created_ts
        return self.sign(spk)

    def device_keys(self, spk: dict[str, Any] | None = None) -> dict[str, Any]:
        dev = self.account.device_id
        obj: dict[str, Any] = {
            "user_id": self.account.user_id,
            "device_id": dev,
            "algorithms": ["im.parley.x3dh.v1", "m.megolm.v1.aes-sha2"],
            "keys": {f"ed25519:{dev}": self.public_b64, f"curve25519:{dev}": _x25519_b64()},
        }
        if spk is not None:
            obj["im.parley.signed_pre_key"] = spk
        return self.sign(obj)

    def one_time_keys(self, count: int, start: int = 0, algorithm: str = PARLEY_OTK) -> dict[str, Any]:
        return {
            f"{algorithm}:K{start + i:05d}": self.sign(
                {"usage": "one_time_prekey", "key_id": start + i, "key": _x25519_b64()}
            )
            for i in range(count)
        }


async def upload(server: RunningServer, account: Account, body: dict[str, Any]) -> dict[str, Any]:
    response = await server.api("POST", "keys/upload", account, json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def upload_device(
    server: RunningServer, account: Account, otks: int = 0, spk: bool = True
) -> DeviceIdentity:
    ident = DeviceIdentity(account)
    body: dict[str, Any] = {"device_keys": ident.device_keys(ident.signed_pre_key() if spk else None)}
    if otks:
        body["one_time_keys"] = ident.one_time_keys(otks)
    await upload(server, account, body)
    return ident


async def grant(server: RunningServer, requester: Account, target: Account) -> None:
    """What the e-mail lookup does: ``requester`` may now see ``target``'s keys."""
    await server.hs.services.keys.grant_lookup(requester.user_id, target.user_id)


async def current_token(server: RunningServer) -> str:
    return SyncToken.from_mapping(await server.hs.services.streams.current_all()).encode()


async def login(server: RunningServer, account: Account, device_id: str) -> Account:
    localpart = account.user_id[1:].split(":")[0]
    response = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": localpart},
        "password": account.password, "device_id": device_id})
    assert response.status_code == 200, response.text
    data = response.json()
    return Account(data["user_id"], data["device_id"], data["access_token"], account.password)


def assert_error(response: Any, status: int, errcode: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["errcode"] == errcode, response.text


# --------------------------------------------------------------------------- tests
async def test_upload_query_claim_round_trip(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    ident = DeviceIdentity(alice)
    spk = ident.signed_pre_key(key_id=3, created_ts=server.hs.services.clock.now_ms() - 1000)
    keys = ident.device_keys(spk)
    otks = ident.one_time_keys(3)
    result = await upload(server, alice, {"device_keys": keys, "one_time_keys": otks})
    assert result["one_time_key_counts"] == {PARLEY_OTK: 3, "signed_curve25519": 0}
    assert result["im.parley.signed_pre_key_age_ms"] >= 1000
    assert result["im.parley.signed_pre_key_created_ts"] == spk["created_ts"]

    # Own keys are always visible.
    own = (await server.api("POST", "keys/query", alice, json={"device_keys": {alice.user_id: []}})).json()
    got = own["device_keys"][alice.user_id][alice.device_id]
    assert {k: v for k, v in got.items() if k != "unsigned"} == keys
    assert got["unsigned"]["im.parley.signed_pre_key_age_ms"] >= 1000
    assert own["failures"] == {}

    # Bob neither shares a room nor looked Alice up: silently nothing.
    hidden = (await server.api("POST", "keys/query", bob, json={"device_keys": {alice.user_id: []}})).json()
    assert hidden["device_keys"].get(alice.user_id, {}) == {}
    claim_body = {"one_time_keys": {alice.user_id: {alice.device_id: PARLEY_OTK}}}
    assert (await server.api("POST", "keys/claim", bob, json=claim_body)).json()["one_time_keys"] == {}
    await grant(server, bob, alice)
    seen = (await server.api("POST", "keys/query", bob,
                             json={"device_keys": {alice.user_id: [alice.device_id]}})).json()
    assert seen["device_keys"][alice.user_id][alice.device_id]["keys"] == keys["keys"]
    only_other = (await server.api("POST", "keys/query", bob,
                                   json={"device_keys": {alice.user_id: ["NOSUCH"]}})).json()
    assert only_other["device_keys"][alice.user_id] == {}

    claimed: dict[str, Any] = {}
    for _ in range(3):
        response = await server.api("POST", "keys/claim", bob, json=claim_body)
        assert response.status_code == 200, response.text
        one = response.json()["one_time_keys"][alice.user_id][alice.device_id]
        assert len(one) == 1
        claimed.update(one)
    assert claimed == otks  # each key exactly once, unchanged
    empty = (await server.api("POST", "keys/claim", bob, json=claim_body)).json()
    assert empty == {"one_time_keys": {}, "failures": {}}
    counts = await upload(server, alice, {})
    assert counts["one_time_key_counts"] == {"signed_curve25519": 0}


async def test_forged_and_malformed_uploads_are_refused(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    ident = DeviceIdentity(alice)
    good = ident.device_keys(ident.signed_pre_key())

    async def refused(body: Any, status: int = 400, errcode: str = "M_INVALID_PARAM") -> None:
        assert_error(await server.api("POST", "keys/upload", alice, json=body), status, errcode)

    # Signed by another key: forged.
    forged = copy.deepcopy(good)
    forged["signatures"] = {}
    sign_json(forged, alice.user_id, alice.device_id, Ed25519PrivateKey.generate())
    await refused({"device_keys": forged})
    # Tampered after signing.
    tampered = copy.deepcopy(good)
    tampered["algorithms"].append("evil")
    await refused({"device_keys": tampered})
    # No signature at all.
    unsigned = {k: v for k, v in good.items() if k != "signatures"}
    await refused({"device_keys": unsigned}, errcode="M_BAD_JSON")
    # Someone else's user or device id.
    other_user = DeviceIdentity(bob).device_keys()
    await refused({"device_keys": other_user})
    wrong_device = copy.deepcopy(good)
    wrong_device["device_id"] = "OTHERDEV"
    await refused({"device_keys": ident.sign({k: v for k, v in wrong_device.items() if k != "signatures"})})
    # Malformed keys.
    short = copy.deepcopy(good)
    short["keys"][f"ed25519:{alice.device_id}"] = "AAAA"
    short.pop("signatures")
    await refused({"device_keys": ident.sign(short)})
    no_ed = copy.deepcopy(good)
    no_ed["keys"].pop(f"ed25519:{alice.device_id}")
    no_ed.pop("signatures")
    await refused({"device_keys": ident.sign(no_ed)})
    await refused({"device_keys": [1, 2]}, errcode="M_BAD_JSON")
    await refused({"device_keys": {**good, "algorithms": "x"}}, errcode="M_BAD_JSON")
    # A signed pre-key signed by another key.
    bad_spk = ident.signed_pre_key()
    bad_spk["signatures"] = {}
    sign_json(bad_spk, alice.user_id, alice.device_id, Ed25519PrivateKey.generate())
    await refused({"device_keys": ident.device_keys(bad_spk)})
    bad_spk_key = {"usage": "signed_prekey", "key_id": 1, "key": "not base64!"}
    await refused({"device_keys": ident.device_keys(ident.sign(bad_spk_key))})
    # Nothing was stored by any refused request.
    query = (await server.api("POST", "keys/query", alice, json={"device_keys": {alice.user_id: []}})).json()
    assert query["device_keys"][alice.user_id] == {}

    # Signed one-time keys need the device key first.
    await refused({"one_time_keys": ident.one_time_keys(1)})
    await upload(server, alice, {"device_keys": good})
    forged_otk = ident.one_time_keys(1)
    for value in forged_otk.values():
        value["key"] = _x25519_b64()  # no longer matches its signature
    await refused({"one_time_keys": forged_otk})
    await refused({"one_time_keys": {"signed_curve25519:AAAAAQ": _x25519_b64()}})  # must be signed
    await refused({"one_time_keys": {f"{PARLEY_OTK}:bad id!": ident.sign({"key": _x25519_b64()})}})
    await refused({"one_time_keys": {"no_colon": "x"}})
    await refused({"one_time_keys": {"curve25519:AAAAAQ": "too short"}})
    await refused({"one_time_keys": {"curve25519:AAAAAQ": 5}}, errcode="M_BAD_JSON")
    await refused({"one_time_keys": [1]}, errcode="M_BAD_JSON")
    await refused({"fallback_keys": {"signed_curve25519:A": {"key": _x25519_b64()}}})
    # Plain curve25519 keys are opaque strings (Olm clients).
    result = await upload(server, alice, {"one_time_keys": {"curve25519:AAAAAQ": _x25519_b64()}})
    assert result["one_time_key_counts"]["curve25519"] == 1
    # Re-uploading a key id with a different value is refused; the same value is fine.
    same = ident.one_time_keys(1, start=7)
    await upload(server, alice, {"one_time_keys": same})
    await upload(server, alice, {"one_time_keys": same})
    await refused({"one_time_keys": ident.one_time_keys(1, start=7)})
    counts = (await upload(server, alice, {}))["one_time_key_counts"]
    assert counts[PARLEY_OTK] == 1
    # The device's identity key can never change.
    await refused({"device_keys": DeviceIdentity(alice).device_keys()})
    # Not JSON at all.
    raw = await server.api("POST", "keys/upload", alice, content=b"{nope", headers={"Content-Type": "application/json"})
    assert_error(raw, 400, "M_NOT_JSON")
    unauthenticated = await server.api("POST", "keys/upload", json={})
    assert unauthenticated.status_code == 401


async def test_crypto_module_device_keys_are_accepted(server: RunningServer) -> None:
    from common.crypto.keys import IdentityKeyPair, OneTimePreKey, SignedPreKey

    alice = await server.register("alice")
    identity = IdentityKeyPair.generate()
    keys = identity.device_keys(alice.user_id, alice.device_id)
    spk = SignedPreKey.generate(1, created_ms=server.hs.services.clock.now_ms())
    keys.pop("signatures")
    keys["im.parley.signed_pre_key"] = spk.signed_public(identity, alice.user_id, alice.device_id)
    identity.sign_json(keys, alice.user_id, alice.device_id)
    otks = {
        f"{PARLEY_OTK}:{i}": OneTimePreKey.generate(i).signed_public(identity, alice.user_id, alice.device_id)
        for i in range(5)
    }
    result = await upload(server, alice, {"device_keys": keys, "one_time_keys": otks})
    assert result["one_time_key_counts"][PARLEY_OTK] == 5
    assert "im.parley.signed_pre_key_age_ms" in result


async def test_signed_pre_key_rotation_is_a_device_list_change(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    await grant(server, bob, alice)
    ident = DeviceIdentity(alice)
    clock_now = server.hs.services.clock.now_ms()
    first = ident.device_keys(ident.signed_pre_key(key_id=1, created_ts=clock_now - 8 * 86_400_000))
    result = await upload(server, alice, {"device_keys": first})
    assert result["im.parley.signed_pre_key_age_ms"] >= 8 * 86_400_000  # time to rotate

    before = await current_token(server)
    # The same object again is no change at all.
    await upload(server, alice, {"device_keys": first})
    assert (await server.api("GET", "keys/changes", bob,
                             params={"from": before, "to": await current_token(server)})).json() == {
        "changed": [], "left": []}
    rotated = ident.device_keys(ident.signed_pre_key(key_id=2))
    result = await upload(server, alice, {"device_keys": rotated})
    assert result["im.parley.signed_pre_key_age_ms"] < 86_400_000
    after = await current_token(server)
    changes = (await server.api("GET", "keys/changes", bob, params={"from": before, "to": after})).json()
    assert changes == {"changed": [alice.user_id], "left": []}
    # A user who cannot see Alice does not learn about the change.
    carol = await server.register("carol")
    hidden = (await server.api("GET", "keys/changes", carol, params={"from": before, "to": after})).json()
    assert hidden["changed"] == []
    query = (await server.api("POST", "keys/query", bob, json={"device_keys": {alice.user_id: []}})).json()
    assert query["device_keys"][alice.user_id][alice.device_id]["im.parley.signed_pre_key"]["key_id"] == 2
    missing = await server.api("GET", "keys/changes", bob, params={"from": before})
    assert_error(missing, 400, "M_MISSING_PARAM")
    bad = await server.api("GET", "keys/changes", bob, params={"from": "garbage", "to": after})
    assert_error(bad, 400, "M_INVALID_PARAM")


async def test_fallback_key_is_returned_when_one_time_keys_run_out(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    await grant(server, bob, alice)
    ident = await upload_device(server, alice, otks=1)
    fallback = {f"{PARLEY_OTK}:FB1": ident.sign({"key": _x25519_b64(), "fallback": True})}
    await upload(server, alice, {"fallback_keys": fallback})
    services = server.hs.services
    assert await services.keys.repo.unused_fallback_algorithms(alice.user_id, alice.device_id) == [PARLEY_OTK]

    body: dict[str, Any] = {"one_time_keys": {alice.user_id: {alice.device_id: PARLEY_OTK}}}
    first = (await server.api("POST", "keys/claim", bob, json=body)).json()["one_time_keys"]
    assert list(first[alice.user_id][alice.device_id]) != list(fallback)  # the one-time key first
    for _ in range(2):  # then the fallback key, as often as needed
        again = (await server.api("POST", "keys/claim", bob, json=body)).json()["one_time_keys"]
        assert again[alice.user_id][alice.device_id] == fallback
    assert await services.keys.repo.unused_fallback_algorithms(alice.user_id, alice.device_id) == []
    # A new fallback key starts unused.
    await upload(server, alice, {"fallback_keys": {f"{PARLEY_OTK}:FB2": ident.sign({"key": _x25519_b64()})}})
    assert await services.keys.repo.unused_fallback_algorithms(alice.user_id, alice.device_id) == [PARLEY_OTK]


async def test_claim_validation(server: RunningServer) -> None:
    alice = await server.register("alice")
    bodies: list[dict[str, Any]] = [{}, {"one_time_keys": []}, {"one_time_keys": {alice.user_id: ["DEV"]}}]
    for body in bodies:
        assert_error(await server.api("POST", "keys/claim", alice, json=body), 400, "M_BAD_JSON")
    bad_user = {"one_time_keys": {"not-a-user": {"DEV": PARLEY_OTK}}}
    assert_error(await server.api("POST", "keys/claim", alice, json=bad_user), 400, "M_INVALID_PARAM")
    bad_alg = {"one_time_keys": {alice.user_id: {"DEV": "bad alg!"}}}
    assert_error(await server.api("POST", "keys/claim", alice, json=bad_alg), 400, "M_INVALID_PARAM")
    assert_error(await server.api("POST", "keys/query", alice, json={"device_keys": {alice.user_id: "x"}}),
                 400, "M_BAD_JSON")
    # Users of a server that cannot be reached: reported under its name in failures.
    remote = await server.api("POST", "keys/query", alice, json={"device_keys": {"@x:elsewhere.example": []}})
    assert remote.status_code == 200
    assert "elsewhere.example" in remote.json()["failures"]


async def test_deleting_a_device_forgets_its_keys(server: RunningServer) -> None:
    alice = await server.register("alice")
    phone = await login(server, alice, "PHONE")
    await upload_device(server, phone, otks=2)
    await upload_device(server, alice, otks=1)
    before = await current_token(server)
    query_body: dict[str, Any] = {"device_keys": {alice.user_id: []}}
    devices = (await server.api("POST", "keys/query", alice, json=query_body)).json()["device_keys"][alice.user_id]
    assert set(devices) == {alice.device_id, "PHONE"}
    response = await server.api("POST", "delete_devices", alice, json={
        "devices": ["PHONE"],
        "auth": {"type": "m.login.password", "password": alice.password,
                 "identifier": {"type": "m.id.user", "user": alice.user_id}},
    })
    if response.status_code == 401:  # interactive auth wants a session id first
        session = response.json()["session"]
        response = await server.api("POST", "delete_devices", alice, json={
            "devices": ["PHONE"],
            "auth": {"type": "m.login.password", "password": alice.password, "session": session,
                     "identifier": {"type": "m.id.user", "user": alice.user_id}},
        })
    assert response.status_code == 200, response.text
    devices = (await server.api("POST", "keys/query", alice, json=query_body)).json()["device_keys"][alice.user_id]
    assert set(devices) == {alice.device_id}
    assert await server.hs.services.keys.repo.count_one_time_keys(alice.user_id, "PHONE") == {}
    changes = (await server.api("GET", "keys/changes", alice,
                                params={"from": before, "to": await current_token(server)})).json()
    assert changes["changed"] == [alice.user_id]


async def test_one_claimer_cannot_drain_a_devices_one_time_keys(make_config: Any) -> None:
    """Any room-mate could claim every one-time key of a user; now 3 per hour each, then the fallback key."""
    clock = ManualClock(start_ms=1_800_000_000_000)
    async with serve_homeserver(make_config(rate_limits={"one_time_key_claims_per_hour": 3}), clock=clock) as server:
        alice = await server.register("alice")
        mallory = await server.register("mallory")
        bob = await server.register("bob")
        await grant(server, mallory, alice)
        await grant(server, bob, alice)
        ident = await upload_device(server, alice, otks=10)
        fallback = {f"{PARLEY_OTK}:FB1": ident.sign({"key": _x25519_b64(), "fallback": True})}
        await upload(server, alice, {"fallback_keys": fallback})
        body: dict[str, Any] = {"one_time_keys": {alice.user_id: {alice.device_id: PARLEY_OTK}}}

        async def claim(account: Account) -> dict[str, Any]:
            response = await server.api("POST", "keys/claim", account, json=body)
            assert response.status_code == 200, response.text
            return dict(response.json()["one_time_keys"][alice.user_id][alice.device_id])

        taken = [await claim(mallory) for _ in range(6)]
        assert all(got != fallback for got in taken[:3])
        assert taken[3:] == [fallback] * 3
        assert await server.hs.services.keys.repo.count_one_time_keys(alice.user_id, alice.device_id) == {
            PARLEY_OTK: 7}
        # Another claimer still gets a one-time key; an hour later, so does mallory.
        assert await claim(bob) != fallback
        clock.advance(3_600_000)
        assert await claim(mallory) != fallback


async def test_unsigned_one_time_keys_are_non_empty_strings_of_at_most_1024_characters(
        server: RunningServer) -> None:
    alice = await server.register()
    await upload_device(server, alice)
    for n, bad in enumerate(("", "k" * 1025)):
        response = await server.api("POST", "keys/upload", alice,
                                    json={"one_time_keys": {f"org.example.opaque:bad{n}": bad}})
        assert response.status_code == 400, response.text
        assert response.json()["errcode"] == "M_INVALID_PARAM", response.text
    result = await upload(server, alice, {"one_time_keys": {"org.example.opaque:edge1": "k",
                                                            "org.example.opaque:edge2": "k" * 1024}})
    assert result["one_time_key_counts"]["org.example.opaque"] == 2

"""/keys/upload takes every algorithm and key format the spec allows, checking only what
the spec requires: the device keys' signature by the device's Ed25519 key over their
canonical JSON.  Keys of algorithms Parley does not know are stored and handed out as
given (strings or objects), counted per algorithm, and claimable."""

from __future__ import annotations

from typing import Any

from tests.homeserver.room_helpers import create_room
from tests.homeserver.test_keys import DeviceIdentity, _x25519_b64, assert_error, upload
from tests.support.server import RunningServer


async def test_foreign_algorithms_are_stored_counted_and_claimed(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, invite=[bob.user_id])
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200
    ident = DeviceIdentity(alice)
    dev = alice.device_id
    device_keys = ident.sign({
        "user_id": alice.user_id, "device_id": dev,
        "algorithms": ["m.olm.v1.curve25519-aes-sha2", "org.example.future.v2"],
        "keys": {f"ed25519:{dev}": ident.public_b64, f"curve25519:{dev}": _x25519_b64(),
                 f"org.example.kem:{dev}": "a-key-in-some-other-format"},
        "org.example.extra": {"any": ["json"]},
    })
    signed_otk = ident.sign({"key": _x25519_b64()})
    body: dict[str, Any] = {
        "device_keys": device_keys,
        "one_time_keys": {
            "my_algorithm:my_id_1": "KIhHVkAQi8r41aPNql2zTqQsInpFa8XdslQLC8F8BHc",
            "org.example.otk:A1": {"key": "opaque", "extra": 1},
            "signed_curve25519:AAAAAQ": signed_otk,
        },
        "fallback_keys": {"org.example.otk:F1": {"key": "fallback", "fallback": True}},
    }
    counts = (await upload(server, alice, body))["one_time_key_counts"]
    assert counts["my_algorithm"] == 1 and counts["org.example.otk"] == 1 and counts["signed_curve25519"] == 1

    query = await server.api("POST", "keys/query", bob, json={"device_keys": {alice.user_id: []}})
    assert query.json()["device_keys"][alice.user_id][dev]["keys"][f"org.example.kem:{dev}"] == \
        "a-key-in-some-other-format"
    assert query.json()["device_keys"][alice.user_id][dev]["org.example.extra"] == {"any": ["json"]}
    claims = []
    for _ in range(2):  # the one-time key, then the fallback key
        claim = await server.api("POST", "keys/claim", bob,
                                 json={"one_time_keys": {alice.user_id: {dev: "org.example.otk"}}})
        claims.append(claim.json()["one_time_keys"][alice.user_id][dev])
    assert claims == [{"org.example.otk:A1": {"key": "opaque", "extra": 1}},
                      {"org.example.otk:F1": {"key": "fallback", "fallback": True}}]
    string_claim = await server.api("POST", "keys/claim", bob,
                                    json={"one_time_keys": {alice.user_id: {dev: "my_algorithm"}}})
    assert string_claim.json()["one_time_keys"][alice.user_id][dev] == {
        "my_algorithm:my_id_1": "KIhHVkAQi8r41aPNql2zTqQsInpFa8XdslQLC8F8BHc"}


async def test_what_the_spec_requires_is_still_checked(server: RunningServer) -> None:
    alice = await server.register()
    ident = DeviceIdentity(alice)
    dev = alice.device_id
    unsigned = {"user_id": alice.user_id, "device_id": dev, "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
                "keys": {f"ed25519:{dev}": ident.public_b64, f"curve25519:{dev}": _x25519_b64()},
                "signatures": {alice.user_id: {f"ed25519:{dev}": "self+signature"}}}
    # SyTest uploads placeholder signatures and keys: the spec's DeviceKeys must be signed
    # by the device's Ed25519 key ("Signing JSON"), so they are refused.
    assert_error(await server.api("POST", "keys/upload", alice, json={"device_keys": unsigned}),
                 400, "M_INVALID_PARAM")
    # A signed_curve25519 one-time key must be signed by the device too (spec: "SignedCurve25519").
    await upload(server, alice, {"device_keys": ident.device_keys()})
    assert_error(await server.api("POST", "keys/upload", alice,
                                  json={"one_time_keys": {"signed_curve25519:X": {"key": _x25519_b64()}}}),
                 400, "M_INVALID_PARAM")

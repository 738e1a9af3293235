"""/keys/upload's and /keys/claim's bounds: device keys of other algorithms are non-empty strings of
at most 1024 characters, no key object's canonical JSON is over 16 KiB (M_TOO_LARGE), at most 500
unclaimed one-time keys per algorithm, and a claimer's one-time keys per device renew each clock hour."""

from __future__ import annotations

from typing import Any

from common.canonical_json import encode_canonical_json
from homeserver.services.clock import ManualClock
from homeserver.services.keys import MAX_KEY_OBJECT_BYTES, MAX_ONE_TIME_KEYS_PER_ALGORITHM
from tests.homeserver.test_keys import (
    PARLEY_OTK,
    DeviceIdentity,
    _x25519_b64,
    assert_error,
    grant,
    upload,
    upload_device,
)
from tests.support.server import RunningServer, serve_homeserver


def _with_extra_key(ident: DeviceIdentity, value: Any) -> dict[str, Any]:
    """The device's keys plus one of another algorithm, signed again by the device."""
    keys = ident.device_keys()
    del keys["signatures"]
    keys["keys"][f"org.example.pq:{ident.account.device_id}"] = value
    return ident.sign(keys)


async def test_device_keys_of_other_algorithms_are_strings_of_1_to_1024_characters(server: RunningServer) -> None:
    alice = await server.register()
    ident = await upload_device(server, alice, spk=False)
    for bad in ("", "k" * 1025, 1024, None, ["k"]):
        response = await server.api("POST", "keys/upload", alice, json={"device_keys": _with_extra_key(ident, bad)})
        assert_error(response, 400, "M_BAD_JSON")
    for good in ("k", "k" * 1024):
        await upload(server, alice, {"device_keys": _with_extra_key(ident, good)})
        query = {"device_keys": {alice.user_id: [alice.device_id]}}
        found = (await server.api("POST", "keys/query", alice, json=query)).json()["device_keys"]
        assert found[alice.user_id][alice.device_id]["keys"][f"org.example.pq:{alice.device_id}"] == good


def _padded(size: int) -> dict[str, Any]:
    """An opaque one-time key object whose canonical JSON is ``size`` bytes."""
    obj = {"key": "opaque", "pad": ""}
    obj["pad"] = "p" * (size - len(encode_canonical_json(obj)))
    assert len(encode_canonical_json(obj)) == size
    return obj


async def test_key_objects_over_16_kib_are_refused_as_too_large(server: RunningServer) -> None:
    alice = await server.register()
    await upload_device(server, alice, spk=False)
    name = "org.example.opaque"
    response = await server.api("POST", "keys/upload", alice,
                                json={"one_time_keys": {f"{name}:big": _padded(MAX_KEY_OBJECT_BYTES + 1)}})
    assert_error(response, 400, "M_TOO_LARGE")
    response = await server.api("POST", "keys/upload", alice,
                                json={"fallback_keys": {f"{name}:bigfb": _padded(MAX_KEY_OBJECT_BYTES + 1)}})
    assert_error(response, 400, "M_TOO_LARGE")
    counts = await upload(server, alice, {"one_time_keys": {f"{name}:fits": _padded(MAX_KEY_OBJECT_BYTES)}})
    assert counts["one_time_key_counts"][name] == 1
    # Nothing of the refused uploads was stored: the one that fits is the only key handed out.
    claim = {"one_time_keys": {alice.user_id: {alice.device_id: name}}}
    for expected in (f"{name}:fits", None):
        got = (await server.api("POST", "keys/claim", alice, json=claim)).json()["one_time_keys"]
        assert list(got.get(alice.user_id, {}).get(alice.device_id, {})) == ([expected] if expected else [])


async def test_at_most_500_unclaimed_one_time_keys_per_algorithm(server: RunningServer) -> None:
    alice = await server.register()
    ident = await upload_device(server, alice, spk=False)
    batches = [ident.one_time_keys(150, start=start) for start in range(0, 450, 150)]
    for batch in batches:  # request bodies stay under the 64 KiB limit
        await upload(server, alice, {"one_time_keys": batch})
    too_many = await server.api("POST", "keys/upload", alice, json={"one_time_keys": ident.one_time_keys(51, start=450)})
    assert_error(too_many, 400, "M_INVALID_PARAM")
    # Another algorithm has its own 500; keys already stored (the same values again) add nothing.
    other = ident.one_time_keys(10, algorithm="signed_curve25519")
    again = dict(list(batches[-1].items())[-50:])
    counts = (await upload(server, alice, {"one_time_keys": {**other, **again}}))["one_time_key_counts"]
    assert counts == {PARLEY_OTK: 450, "signed_curve25519": 10}
    # Up to the limit, whatever else the same upload holds.
    mixed = {**ident.one_time_keys(50, start=450), **ident.one_time_keys(60, start=10, algorithm="signed_curve25519")}
    counts = (await upload(server, alice, {"one_time_keys": mixed}))["one_time_key_counts"]
    assert counts == {PARLEY_OTK: MAX_ONE_TIME_KEYS_PER_ALGORITHM, "signed_curve25519": 70}
    last = await server.api("POST", "keys/upload", alice, json={"one_time_keys": ident.one_time_keys(1, start=500)})
    assert_error(last, 400, "M_INVALID_PARAM")


async def test_a_claimers_budget_renews_at_the_top_of_each_hour(make_config: Any) -> None:
    """Fixed hourly windows: three one-time keys per claimer and device in each clock hour."""
    hour = 3_600_000
    clock = ManualClock(start_ms=500_000 * hour - 1)
    async with serve_homeserver(make_config(rate_limits={"one_time_key_claims_per_hour": 3}), clock=clock) as server:
        alice, mallory = await server.register("alice"), await server.register("mallory")
        await grant(server, mallory, alice)
        ident = await upload_device(server, alice, otks=10)
        fallback = {f"{PARLEY_OTK}:FB": ident.sign({"key": _x25519_b64(), "fallback": True})}
        await upload(server, alice, {"fallback_keys": fallback})
        body = {"one_time_keys": {alice.user_id: {alice.device_id: PARLEY_OTK}}}

        async def claim() -> dict[str, Any]:
            response = await server.api("POST", "keys/claim", mallory, json=body)
            assert response.status_code == 200, response.text
            return dict(response.json()["one_time_keys"][alice.user_id][alice.device_id])

        assert [await claim() == fallback for _ in range(4)] == [False, False, False, True]
        clock.advance(1)  # the next hour begins
        assert [await claim() == fallback for _ in range(4)] == [False, False, False, True]


async def test_a_signed_pre_keys_created_ts_is_a_non_negative_integer(server: RunningServer) -> None:
    alice = await server.register()
    ident = DeviceIdentity(alice)
    for bad in (True, False, -1, "1700000000000", [1]):
        spk = ident.signed_pre_key(created_ts=0)
        del spk["signatures"]
        spk["created_ts"] = bad
        response = await server.api("POST", "keys/upload", alice,
                                    json={"device_keys": ident.device_keys(ident.sign(spk))})
        assert_error(response, 400, "M_INVALID_PARAM")
    # Nothing was stored; a valid one (0 is a time too) is.
    query = {"device_keys": {alice.user_id: []}}
    assert (await server.api("POST", "keys/query", alice, json=query)).json()["device_keys"][alice.user_id] == {}
    result = await upload(server, alice, {"device_keys": ident.device_keys(ident.signed_pre_key(created_ts=0))})
    assert result["im.parley.signed_pre_key_created_ts"] == 0


async def test_a_claim_names_at_most_1000_devices(server: RunningServer) -> None:
    alice = await server.register()
    ident = await upload_device(server, alice, spk=False)
    await upload(server, alice, {"one_time_keys": ident.one_time_keys(1)})
    others = {f"D{n:04d}": PARLEY_OTK for n in range(999)}
    full = {"one_time_keys": {alice.user_id: {**others, alice.device_id: PARLEY_OTK}}}
    answer = await server.api("POST", "keys/claim", alice, json=full)
    assert answer.status_code == 200, answer.text
    assert list(answer.json()["one_time_keys"][alice.user_id]) == [alice.device_id]
    over = {"one_time_keys": {alice.user_id: {**others, "D0999": PARLEY_OTK, alice.device_id: PARLEY_OTK}}}
    assert_error(await server.api("POST", "keys/claim", alice, json=over), 400, "M_INVALID_PARAM")


async def test_a_query_names_at_most_1000_users(server: RunningServer) -> None:
    alice = await server.register()
    domain = alice.user_id.split(":", 1)[1]
    others = {f"@u{n:04d}:{domain}": [] for n in range(999)}
    answer = await server.api("POST", "keys/query", alice, json={"device_keys": {**others, alice.user_id: []}})
    assert answer.status_code == 200, answer.text
    assert answer.json()["device_keys"][alice.user_id] == {}
    over = {"device_keys": {**others, f"@u0999:{domain}": [], alice.user_id: []}}
    assert_error(await server.api("POST", "keys/query", alice, json=over), 400, "M_INVALID_PARAM")


async def test_plain_one_time_keys_are_opaque_except_curve25519(server: RunningServer) -> None:
    """Only a plain ``curve25519`` key must be 32 bytes of base64; other algorithms' strings are opaque."""
    alice = await server.register()
    await upload_device(server, alice, spk=False)
    counts = await upload(server, alice, {"one_time_keys": {"aaa.example:K1": "opaque!", "zzz.example:K2": "opaque!"}})
    assert counts["one_time_key_counts"]["aaa.example"] == 1 and counts["one_time_key_counts"]["zzz.example"] == 1
    response = await server.api("POST", "keys/upload", alice, json={"one_time_keys": {"curve25519:K3": "opaque!"}})
    assert_error(response, 400, "M_INVALID_PARAM")
    await upload(server, alice, {"one_time_keys": {"curve25519:K4": _x25519_b64()}})

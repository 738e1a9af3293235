"""/keys/upload's bounds: device keys of other algorithms are non-empty strings of at most
1024 characters, and no key object's canonical JSON is over 16 KiB (M_TOO_LARGE)."""

from __future__ import annotations

from typing import Any

from common.canonical_json import encode_canonical_json
from homeserver.services.keys import MAX_KEY_OBJECT_BYTES
from tests.homeserver.test_keys import DeviceIdentity, assert_error, upload, upload_device
from tests.support.server import RunningServer


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

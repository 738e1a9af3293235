"""Server-side room key backup: versions, opaque keys, the better-key rule, stale versions."""

from __future__ import annotations

from typing import Any

from tests.homeserver.test_keys import assert_error
from tests.support.server import RunningServer

ALG = "m.megolm_backup.v1.curve25519-aes-sha2"
KEY1 = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
KEY2 = "HxweHRwbGhkYFxYVFBMSERAPDg0MCwoJCAcGBQQDAgE"
AUTH = {"public_key": KEY1}


def _key(fmi: int, fc: int = 0, verified: bool = False, tag: str = "x") -> dict[str, Any]:
    return {
        "first_message_index": fmi,
        "forwarded_count": fc,
        "is_verified": verified,
        "session_data": {"ephemeral": tag, "ciphertext": f"ct-{tag}", "mac": "m"},
    }


async def test_versions_lifecycle(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    none = await server.api("GET", "room_keys/version", alice)
    assert_error(none, 404, "M_NOT_FOUND")

    created = await server.api("POST", "room_keys/version", alice,
                               json={"algorithm": ALG, "auth_data": {"public_key": KEY1, "signatures": {}}})
    assert created.status_code == 200, created.text
    v1 = created.json()["version"]
    assert isinstance(v1, str)
    current = (await server.api("GET", "room_keys/version", alice)).json()
    assert current == {"algorithm": ALG, "auth_data": {"public_key": KEY1, "signatures": {}},
                       "count": 0, "etag": current["etag"], "version": v1}
    assert (await server.api("GET", f"room_keys/version/{v1}", alice)).json()["version"] == v1
    # Another user sees none of it.
    assert_error(await server.api("GET", "room_keys/version", bob), 404, "M_NOT_FOUND")
    assert_error(await server.api("GET", f"room_keys/version/{v1}", bob), 404, "M_NOT_FOUND")

    # auth_data can change, the algorithm cannot.
    update = await server.api("PUT", f"room_keys/version/{v1}", alice,
                              json={"algorithm": ALG, "auth_data": {"public_key": KEY2}, "version": v1})
    assert update.status_code == 200 and update.json() == {}
    assert (await server.api("GET", "room_keys/version", alice)).json()["auth_data"] == {"public_key": KEY2}
    assert_error(await server.api("PUT", f"room_keys/version/{v1}", alice,
                                  json={"algorithm": "other", "auth_data": {}}), 400, "M_INVALID_PARAM")
    assert_error(await server.api("PUT", f"room_keys/version/{v1}", alice,
                                  json={"algorithm": ALG, "auth_data": AUTH, "version": "999"}),
                 400, "M_INVALID_PARAM")
    assert_error(await server.api("PUT", "room_keys/version/999", alice,
                                  json={"algorithm": ALG, "auth_data": AUTH}), 404, "M_NOT_FOUND")
    assert_error(await server.api("POST", "room_keys/version", alice, json={"algorithm": ALG}),
                 400, "M_BAD_JSON")
    assert_error(await server.api("POST", "room_keys/version", alice,
                                  json={"algorithm": 5, "auth_data": {}}), 400, "M_BAD_JSON")

    v2 = (await server.api("POST", "room_keys/version", alice,
                           json={"algorithm": ALG, "auth_data": {**AUTH, "n": 2}})).json()["version"]
    assert int(v2) > int(v1)
    assert (await server.api("GET", "room_keys/version", alice)).json()["version"] == v2
    assert (await server.api("DELETE", f"room_keys/version/{v2}", alice)).json() == {}
    assert_error(await server.api("DELETE", f"room_keys/version/{v2}", alice), 404, "M_NOT_FOUND")
    # The previous version is current again; a new one never reuses a deleted number.
    assert (await server.api("GET", "room_keys/version", alice)).json()["version"] == v1
    v3 = (await server.api("POST", "room_keys/version", alice,
                           json={"algorithm": ALG, "auth_data": AUTH})).json()["version"]
    assert int(v3) > int(v2)
    assert_error(await server.api("GET", "room_keys/version/abc", alice), 404, "M_NOT_FOUND")


async def test_keys_upload_restore_and_stale_version(server: RunningServer) -> None:
    alice = await server.register("alice")
    room = f"!room1:{server.config.server_name}"
    other_room = f"!room2:{server.config.server_name}"
    v1 = (await server.api("POST", "room_keys/version", alice,
                           json={"algorithm": ALG, "auth_data": AUTH})).json()["version"]
    put = await server.api("PUT", "room_keys/keys", alice, params={"version": v1}, json={
        "rooms": {room: {"sessions": {"s1": _key(5), "s2": _key(0)}},
                  other_room: {"sessions": {"s3": _key(1)}}}})
    assert put.status_code == 200, put.text
    assert put.json()["count"] == 3
    etag1 = put.json()["etag"]

    everything = (await server.api("GET", "room_keys/keys", alice, params={"version": v1})).json()
    assert everything["rooms"][room]["sessions"]["s1"] == _key(5)
    assert set(everything["rooms"]) == {room, other_room}
    one_room = (await server.api("GET", f"room_keys/keys/{room}", alice, params={"version": v1})).json()
    assert set(one_room["sessions"]) == {"s1", "s2"}
    one = (await server.api("GET", f"room_keys/keys/{room}/s1", alice, params={"version": v1})).json()
    assert one == _key(5)
    assert_error(await server.api("GET", f"room_keys/keys/{room}/nope", alice, params={"version": v1}),
                 404, "M_NOT_FOUND")
    empty_room = await server.api("GET", f"room_keys/keys/!empty:{server.config.server_name}", alice,
                                  params={"version": v1})
    assert empty_room.json() == {"sessions": {}}

    # The better key wins, whatever the upload order; a tie keeps the stored key.
    async def put_one(data: dict[str, Any]) -> dict[str, Any]:
        response = await server.api("PUT", f"room_keys/keys/{room}/s1", alice, params={"version": v1}, json=data)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def stored() -> dict[str, Any]:
        response = await server.api("GET", f"room_keys/keys/{room}/s1", alice, params={"version": v1})
        return dict(response.json())

    unchanged = await put_one(_key(9, tag="worse"))  # higher first_message_index loses
    assert unchanged["etag"] == etag1 and unchanged["count"] == 3
    assert (await stored())["session_data"]["ephemeral"] == "x"
    await put_one(_key(5, tag="tie"))
    assert (await stored())["session_data"]["ephemeral"] == "x"
    better = await put_one(_key(2, fc=3, tag="lower-index"))
    assert better["etag"] != etag1
    assert (await stored())["first_message_index"] == 2
    await put_one(_key(2, fc=1, tag="fewer-forwards"))
    assert (await stored())["session_data"]["ephemeral"] == "fewer-forwards"
    await put_one(_key(9, fc=9, verified=True, tag="verified"))  # verified beats everything
    assert (await stored())["session_data"]["ephemeral"] == "verified"
    await put_one(_key(0, fc=0, verified=False, tag="unverified"))
    assert (await stored())["session_data"]["ephemeral"] == "verified"

    # A new version: writes to the old one are refused with the current version.
    v2 = (await server.api("POST", "room_keys/version", alice,
                           json={"algorithm": ALG, "auth_data": AUTH})).json()["version"]
    stale = await server.api("PUT", f"room_keys/keys/{room}/s9", alice, params={"version": v1}, json=_key(0))
    assert stale.status_code == 403
    assert stale.json()["errcode"] == "M_WRONG_ROOM_KEYS_VERSION"
    assert stale.json()["current_version"] == v2
    stale_bulk = await server.api("PUT", "room_keys/keys", alice, params={"version": v1},
                                  json={"rooms": {room: {"sessions": {"s9": _key(0)}}}})
    assert stale_bulk.status_code == 403
    # Each version keeps its own keys.
    assert (await server.api("GET", "room_keys/keys", alice, params={"version": v2})).json() == {"rooms": {}}
    assert (await server.api("GET", "room_keys/version", alice)).json()["count"] == 0
    assert (await server.api("GET", f"room_keys/version/{v1}", alice)).json()["count"] == 3

    # Deleting keys.
    deleted = await server.api("DELETE", f"room_keys/keys/{room}/s2", alice, params={"version": v1})
    assert deleted.status_code == 200 and deleted.json()["count"] == 2
    deleted = await server.api("DELETE", f"room_keys/keys/{room}", alice, params={"version": v1})
    assert deleted.json()["count"] == 1
    deleted = await server.api("DELETE", "room_keys/keys", alice, params={"version": v1})
    assert deleted.json()["count"] == 0
    # Deleting a version drops its keys.
    await server.api("PUT", f"room_keys/keys/{room}/s1", alice, params={"version": v2}, json=_key(0))
    await server.api("DELETE", f"room_keys/version/{v2}", alice)
    assert_error(await server.api("GET", "room_keys/keys", alice, params={"version": v2}), 404, "M_NOT_FOUND")


async def test_key_backup_validation(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    room = f"!room:{server.config.server_name}"
    path = f"room_keys/keys/{room}/s1"
    assert_error(await server.api("PUT", path, alice, params={"version": "1"}, json=_key(0)), 404, "M_NOT_FOUND")
    v = (await server.api("POST", "room_keys/version", alice, json={"algorithm": ALG, "auth_data": AUTH})).json()["version"]
    assert_error(await server.api("PUT", path, alice, json=_key(0)), 400, "M_MISSING_PARAM")
    for bad in ({**_key(0), "first_message_index": -1}, {**_key(0), "is_verified": "yes"},
                {**_key(0), "session_data": "opaque"}, {k: v for k, v in _key(0).items() if k != "forwarded_count"}):
        assert_error(await server.api("PUT", path, alice, params={"version": v}, json=bad), 400, "M_BAD_JSON")
    assert_error(await server.api("PUT", "room_keys/keys/not-a-room/s1", alice, params={"version": v}, json=_key(0)),
                 400, "M_INVALID_PARAM")
    assert_error(await server.api("PUT", "room_keys/keys", alice, params={"version": v}, json={"rooms": []}),
                 400, "M_BAD_JSON")
    # Bob cannot read or write Alice's backup (he has none of his own).
    assert_error(await server.api("GET", "room_keys/keys", bob, params={"version": v}), 404, "M_NOT_FOUND")
    assert_error(await server.api("PUT", path, bob, params={"version": v}, json=_key(0)), 404, "M_NOT_FOUND")
    assert (await server.api("GET", "room_keys/keys", alice, params={"version": v})).json() == {"rooms": {}}
    # The r0 prefix works too.
    r0 = await server.api("GET", "/_matrix/client/r0/room_keys/version", alice)
    assert r0.status_code == 200 and r0.json()["version"] == v


async def test_auth_data_follows_the_algorithm(server: RunningServer) -> None:
    """``auth_data`` is algorithm-dependent (spec, "Server-side key backups"): the spec's
    algorithm needs its AuthData object with a Curve25519 ``public_key``; another
    algorithm's data is stored as given — SyTest's ``m.megolm_backup.v1`` with a string."""
    alice = await server.register()
    for bad in ("a string", [], {}, {"public_key": "abc"}, {"public_key": KEY1 + "A"}, {"public_key": 5},
                {"public_key": KEY1, "signatures": []}, {"public_key": KEY1, "signatures": {"@a:hs": "x"}}):
        assert_error(await server.api("POST", "room_keys/version", alice, json={"algorithm": ALG, "auth_data": bad}),
                     400, "M_BAD_JSON")
    assert_error(await server.api("POST", "room_keys/version", alice, json={"algorithm": "org.example"}),
                 400, "M_BAD_JSON")
    signed = {"public_key": KEY1, "signatures": {alice.user_id: {"ed25519:DEV": "sig"}}}
    ok = await server.api("POST", "room_keys/version", alice, json={"algorithm": ALG, "auth_data": signed})
    assert ok.status_code == 200, ok.text
    for auth_data in ("anopaquestring", ["a", 1], {"anything": True}):
        made = await server.api("POST", "room_keys/version", alice,
                                json={"algorithm": "m.megolm_backup.v1", "auth_data": auth_data})
        assert made.status_code == 200, made.text
        version = made.json()["version"]
        got = (await server.api("GET", f"room_keys/version/{version}", alice)).json()
        assert got["algorithm"] == "m.megolm_backup.v1" and got["auth_data"] == auth_data
    updated = await server.api("PUT", f"room_keys/version/{version}", alice,
                               json={"algorithm": "m.megolm_backup.v1", "auth_data": "adifferentopaquestring"})
    assert updated.status_code == 200, updated.text
    got = (await server.api("GET", "room_keys/version", alice)).json()
    assert got["auth_data"] == "adifferentopaquestring"
    # Its session data is the algorithm's too; room ids are only filed (v12 ids have no server name).
    room, session = "!abcd", "1234"
    entry = {"first_message_index": 3, "forwarded_count": 0, "is_verified": False, "session_data": "anopaquestring"}
    put = await server.api("PUT", f"room_keys/keys/{room}/{session}", alice, params={"version": version}, json=entry)
    assert put.status_code == 200, put.text
    got = await server.api("GET", f"room_keys/keys/{room}/{session}", alice, params={"version": version})
    assert got.status_code == 200 and got.json() == entry, got.text
    assert_error(await server.api("GET", "room_keys/keys/!notaroom/notassession", alice, params={"version": version}),
                 404, "M_NOT_FOUND")
    no_data = {k: v for k, v in entry.items() if k != "session_data"}
    assert_error(await server.api("PUT", f"room_keys/keys/{room}/{session}", alice, params={"version": version},
                                  json=no_data), 400, "M_BAD_JSON")
    # The spec's algorithm keeps wanting an object.
    spec_version = (await server.api("POST", "room_keys/version", alice,
                                     json={"algorithm": ALG, "auth_data": AUTH})).json()["version"]
    assert_error(await server.api("PUT", f"room_keys/keys/{room}/{session}", alice, params={"version": spec_version},
                                  json=entry), 400, "M_BAD_JSON")

"""Device listing, renaming and deletion behind interactive auth."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from common.canonical_json import unpadded_b64encode
from homeserver.services.accounts import challenge_message
from tests.support.server import RunningServer


async def _login(server: RunningServer, user: str, password: str, **extra: object) -> dict[str, str]:
    response = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": password, **extra})
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_list_rename_and_device_fields(server: RunningServer) -> None:
    alice = await server.register("alice", password="alice password")
    phone = await _login(server, "alice", "alice password", device_id="PHONE1",
                         initial_device_display_name="Phone")
    assert phone["device_id"] == "PHONE1"
    listing = (await server.api("GET", "devices", alice)).json()["devices"]
    by_id = {d["device_id"]: d for d in listing}
    assert set(by_id) == {alice.device_id, "PHONE1"}
    assert by_id["PHONE1"]["display_name"] == "Phone"
    assert set(by_id["PHONE1"]) == {"device_id", "display_name", "last_seen_ip", "last_seen_ts"}
    assert by_id[alice.device_id]["last_seen_ip"] == "127.0.0.1"
    assert isinstance(by_id[alice.device_id]["last_seen_ts"], int)

    assert (await server.api("PUT", "devices/PHONE1", alice, json={"display_name": "Old phone"})).json() == {}
    assert (await server.api("GET", "devices/PHONE1", alice)).json()["display_name"] == "Old phone"
    too_long = await server.api("PUT", "devices/PHONE1", alice, json={"display_name": "x" * 101})
    assert too_long.status_code == 400
    missing = await server.api("GET", "devices/NOPE", alice)
    assert missing.status_code == 404 and missing.json()["errcode"] == "M_NOT_FOUND"
    bad = await server.api("GET", "devices/..%2F..%2Fetc", alice)
    assert bad.status_code == 404

    # Logging in again with a known device id reuses that device.
    again = await _login(server, "alice", "alice password", device_id="PHONE1")
    assert again["device_id"] == "PHONE1"
    assert len((await server.api("GET", "devices", alice)).json()["devices"]) == 2
    # ... and ends that device's previous session.
    old = await server.api("GET", "account/whoami", headers={"Authorization": f"Bearer {phone['access_token']}"})
    assert old.status_code == 401


async def test_other_users_devices_are_invisible(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    response = await server.api("GET", f"devices/{alice.device_id}", bob)
    assert response.status_code == 404
    rename = await server.api("PUT", f"devices/{alice.device_id}", bob, json={"display_name": "mine"})
    assert rename.status_code == 404


async def test_delete_device_needs_password_and_revokes_its_token(server: RunningServer) -> None:
    alice = await server.register("alice", password="alice password")
    tablet = await _login(server, "alice", "alice password", device_id="TABLET")
    first = await server.api("DELETE", "devices/TABLET", alice)
    assert first.status_code == 401
    body = first.json()
    assert {"stages": ["m.login.password"]} in body["flows"]
    wrong = await server.api("DELETE", "devices/TABLET", alice, json={"auth": {
        "type": "m.login.password", "password": "wrong", "session": body["session"],
        "identifier": {"type": "m.id.user", "user": "alice"}}})
    assert wrong.status_code == 401
    assert wrong.json()["errcode"] == "M_FORBIDDEN"
    assert wrong.json()["session"] == body["session"]
    ok = await server.api("DELETE", "devices/TABLET", alice, json={"auth": {
        "type": "m.login.password", "password": "alice password", "session": body["session"],
        "identifier": {"type": "m.id.user", "user": "alice"}}})
    assert ok.status_code == 200, ok.text
    revoked = await server.api("GET", "account/whoami",
                               headers={"Authorization": f"Bearer {tablet['access_token']}"})
    assert revoked.status_code == 401
    assert [d["device_id"] for d in (await server.api("GET", "devices", alice)).json()["devices"]] == [
        alice.device_id]


async def test_delete_devices_in_bulk(server: RunningServer) -> None:
    alice = await server.register("alice", password="alice password")
    for device in ("D1", "D2", "D3"):
        await _login(server, "alice", "alice password", device_id=device)
    bad = await server.api("POST", "delete_devices", alice, json={"devices": "D1"})
    assert bad.status_code == 400 and bad.json()["errcode"] == "M_BAD_JSON"
    ok = await server.api("POST", "delete_devices", alice, json={"devices": ["D1", "D2", "unknown"], "auth": {
        "type": "m.login.password", "password": "alice password", "user": "alice"}})
    assert ok.status_code == 200, ok.text
    remaining = {d["device_id"] for d in (await server.api("GET", "devices", alice)).json()["devices"]}
    assert remaining == {alice.device_id, "D3"}


async def test_delete_device_with_key_signature_stage(server: RunningServer) -> None:
    key = Ed25519PrivateKey.generate()
    public = unpadded_b64encode(key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw))
    reg = await server.api("POST", "register", json={
        "username": "keyonly", "im.parley.login_key": public, "auth": {"type": "m.login.dummy"},
        "device_id": "MAIN"})
    token = reg.json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    challenge = (await server.api("POST", "/_matrix/client/unstable/im.parley/login/challenge",
                                  json={"identifier": {"type": "m.id.user", "user": "keyonly"}})).json()
    signature = unpadded_b64encode(key.sign(challenge_message(
        server.config.server_name, challenge["challenge_id"], challenge["nonce"])))
    other = (await server.api("POST", "login", json={
        "type": "im.parley.login.signature", "challenge_id": challenge["challenge_id"],
        "signature": signature, "device_id": "SECOND"})).json()
    assert other["device_id"] == "SECOND"

    first = await server.api("DELETE", "devices/SECOND", headers=headers)
    assert first.status_code == 401
    body = first.json()
    assert body["flows"] == [{"stages": ["im.parley.login.signature"]}]
    offered = body["params"]["im.parley.login.signature"]
    signature = unpadded_b64encode(key.sign(challenge_message(
        server.config.server_name, offered["challenge_id"], offered["nonce"])))
    ok = await server.api("DELETE", "devices/SECOND", headers=headers, json={"auth": {
        "type": "im.parley.login.signature", "session": body["session"],
        "challenge_id": offered["challenge_id"], "signature": signature}})
    assert ok.status_code == 200, ok.text

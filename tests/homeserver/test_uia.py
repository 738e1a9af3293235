"""User-interactive auth as standard clients drive it: empty first requests, remembered
parameters, replayed sessions, and sessions bound to the operation they were begun for."""

from __future__ import annotations

import secrets

from tests.support.server import RunningServer


async def _login(server: RunningServer, user: str, password: str, device_id: str) -> str:
    response = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": password, "device_id": device_id})
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


async def test_empty_register_answers_401_with_flows(server: RunningServer) -> None:
    response = await server.api("POST", "register", json={})
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert {"stages": ["m.login.dummy"]} in body["flows"]
    assert isinstance(body["session"], str) and body["session"]
    assert body["completed"] == []
    # A taken name is refused before any stage is asked for.
    alice = await server.register()
    taken = await server.api("POST", "register", json={"username": alice.user_id[1:].split(":")[0]})
    assert taken.status_code == 400
    assert taken.json()["errcode"] == "M_USER_IN_USE"


async def test_registration_remembers_parameters_and_replays(server: RunningServer) -> None:
    name = f"remember{secrets.token_hex(3)}"
    first = await server.api("POST", "register", json={
        "username": name, "password": "sUp3rs3kr1t!", "device_id": "XYZZY",
        "initial_device_display_name": "display_name"})
    assert first.status_code == 401
    session = first.json()["session"]
    # The password is never kept in the session, only a hash.
    row = await server.hs.services.uia.repo.get_uia(session, server.hs.services.clock.now_ms())
    assert row is not None and "sUp3rs3kr1t!" not in repr(row.params)

    done = await server.api("POST", "register", json={"auth": {"type": "m.login.dummy", "session": session}})
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["user_id"] == f"@{name}:{server.config.server_name}"
    assert body["device_id"] == "XYZZY"
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    device = await server.api("GET", "devices/XYZZY", headers=headers)
    assert device.json()["display_name"] == "display_name"
    # The remembered password works.
    await _login(server, name, "sUp3rs3kr1t!", "OTHER")

    replay = await server.api("POST", "register", json={"auth": {"type": "m.login.dummy", "session": session}})
    assert replay.status_code == 200, replay.text
    assert replay.json()["user_id"] == body["user_id"]


async def test_registration_without_username_is_idempotent(server: RunningServer) -> None:
    first = await server.api("POST", "register", json={"password": "sUp3rs3kr1t!"})
    assert first.status_code == 401
    auth = {"type": "m.login.dummy", "session": first.json()["session"]}
    one = await server.api("POST", "register", json={"password": "sUp3rs3kr1t!", "auth": auth})
    two = await server.api("POST", "register", json={"password": "sUp3rs3kr1t!", "auth": auth})
    assert one.status_code == two.status_code == 200
    assert one.json()["user_id"] == two.json()["user_id"]


async def test_missing_password_after_the_flow_is_a_clear_error(server: RunningServer) -> None:
    response = await server.api("POST", "register", json={"auth": {"type": "m.login.dummy"}})
    assert response.status_code == 400
    assert response.json()["errcode"] == "M_MISSING_PARAM"


async def test_session_is_bound_to_the_device_it_was_begun_for(server: RunningServer) -> None:
    alice = await server.register(password="alice password")
    name = alice.user_id[1:].split(":")[0]
    await _login(server, name, "alice password", "DEVA")
    await _login(server, name, "alice password", "DEVB")
    first = await server.api("DELETE", "devices/DEVA", alice, json={})
    assert first.status_code == 401
    auth = {"type": "m.login.password", "password": "alice password", "session": first.json()["session"],
            "identifier": {"type": "m.id.user", "user": alice.user_id}}
    other = await server.api("DELETE", "devices/DEVB", alice, json={"auth": auth})
    assert other.status_code == 403
    assert other.json()["errcode"] == "M_FORBIDDEN"
    listing = {d["device_id"] for d in (await server.api("GET", "devices", alice)).json()["devices"]}
    assert {"DEVA", "DEVB"} <= listing

    ok = await server.api("DELETE", "devices/DEVA", alice, json={"auth": auth})
    assert ok.status_code == 200, ok.text
    # Same for the bulk endpoint: the device list is part of the operation.
    bulk = await server.api("POST", "delete_devices", alice, json={"devices": ["DEVB"]})
    assert bulk.status_code == 401
    auth["session"] = bulk.json()["session"]
    widened = await server.api("POST", "delete_devices", alice,
                               json={"devices": ["DEVB", alice.device_id], "auth": auth})
    assert widened.status_code == 403
    ok = await server.api("POST", "delete_devices", alice, json={"devices": ["DEVB"], "auth": auth})
    assert ok.status_code == 200, ok.text
    listing = {d["device_id"] for d in (await server.api("GET", "devices", alice)).json()["devices"]}
    assert listing == {alice.device_id}


async def test_another_users_password_is_forbidden(server: RunningServer) -> None:
    alice = await server.register(password="alice password")
    eve = await server.register(password="eve password!")
    name = alice.user_id[1:].split(":")[0]
    await _login(server, name, "alice password", "LOGIN_DEVICE")
    stolen = await server.api("DELETE", "devices/LOGIN_DEVICE", alice, json={"auth": {
        "type": "m.login.password", "password": eve.password,
        "identifier": {"type": "m.id.user", "user": eve.user_id}}})
    assert stolen.status_code == 403
    assert stolen.json()["errcode"] == "M_FORBIDDEN"
    assert (await server.api("GET", "devices/LOGIN_DEVICE", alice)).status_code == 200


async def test_new_account_shows_its_localpart_as_display_name(server: RunningServer) -> None:
    alice = await server.register()
    localpart = alice.user_id[1:].split(":")[0]
    response = await server.api("GET", f"profile/{alice.user_id}/displayname", alice)
    assert response.status_code == 200
    assert response.json() == {"displayname": localpart}

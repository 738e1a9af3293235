"""Password change, deactivation and capabilities over HTTP."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.homeserver.room_helpers import create_room
from tests.support.server import Account, RunningServer


def _localpart(account: Account) -> str:
    return account.user_id[1:].split(":")[0]


async def _login(server: RunningServer, account: Account, password: str, device_id: str | None = None) -> Any:
    body: dict[str, Any] = {"type": "m.login.password", "password": password,
                            "identifier": {"type": "m.id.user", "user": account.user_id}}
    if device_id:
        body["device_id"] = device_id
    return await server.api("POST", "login", json=body)


def _auth(account: Account, password: str | None = None, session: str | None = None) -> dict[str, Any]:
    auth: dict[str, Any] = {"type": "m.login.password", "password": password or account.password,
                            "identifier": {"type": "m.id.user", "user": account.user_id}}
    if session:
        auth["session"] = session
    return auth


async def test_change_password_logs_out_other_devices(server: RunningServer) -> None:
    alice = await server.register(password="old password 1")
    other = (await _login(server, alice, "old password 1", "OTHER")).json()
    first = await server.api("POST", "account/password", alice, json={"new_password": "new password 2"})
    assert first.status_code == 401
    assert {"stages": ["m.login.password"]} in first.json()["flows"]
    wrong = await server.api("POST", "account/password", alice, json={
        "new_password": "new password 2", "auth": _auth(alice, "not the password", first.json()["session"])})
    assert wrong.status_code == 401 and wrong.json()["errcode"] == "M_FORBIDDEN"
    ok = await server.api("POST", "account/password", alice, json={
        "new_password": "new password 2", "auth": _auth(alice, session=first.json()["session"])})
    assert ok.status_code == 200, ok.text

    assert (await _login(server, alice, "old password 1")).status_code == 403
    assert (await _login(server, alice, "new password 2")).status_code == 200
    # This session still works, the other one is gone.
    assert (await server.api("GET", "account/whoami", alice)).status_code == 200
    gone = await server.api("GET", "account/whoami", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert gone.status_code == 401
    weak = await server.api("POST", "account/password", alice, json={"new_password": "short"})
    assert weak.status_code == 400 and weak.json()["errcode"] == "M_WEAK_PASSWORD"


async def test_change_password_can_keep_other_devices(server: RunningServer) -> None:
    alice = await server.register(password="old password 1")
    other = (await _login(server, alice, "old password 1", "OTHER")).json()
    first = await server.api("POST", "account/password", alice, json={"new_password": "new password 2"})
    ok = await server.api("POST", "account/password", alice, json={
        "new_password": "new password 2", "logout_devices": False,
        "auth": _auth(alice, "old password 1", first.json()["session"])})
    assert ok.status_code == 200, ok.text
    kept = await server.api("GET", "account/whoami", headers={"Authorization": f"Bearer {other['access_token']}"})
    assert kept.status_code == 200


async def test_deactivate_erases_the_account(server: RunningServer) -> None:
    alice = await server.register(password="alice password")
    bob = await server.register()
    joined = await create_room(server, bob, preset="public_chat")
    await server.api("POST", f"join/{quote(joined)}", alice, json={})
    invited = await create_room(server, bob)
    await server.api("POST", f"rooms/{quote(invited)}/invite", bob, json={"user_id": alice.user_id})
    await server.api("PUT", f"profile/{quote(alice.user_id)}/displayname", alice, json={"displayname": "Alice"})
    await server.api("POST", "keys/upload", alice, json={"one_time_keys": {}})

    first = await server.api("POST", "account/deactivate", alice, json={})
    assert first.status_code == 401
    wrong = await server.api("POST", "account/deactivate", alice, json={
        "auth": _auth(alice, "wrong password", first.json()["session"])})
    assert wrong.status_code == 401
    assert (await server.api("GET", "account/whoami", alice)).status_code == 200
    done = await server.api("POST", "account/deactivate", alice, json={
        "auth": _auth(alice, session=first.json()["session"]), "erase": True})
    assert done.status_code == 200, done.text
    assert done.json() == {"id_server_unbind_result": "no-support"}

    assert (await server.api("GET", "account/whoami", alice)).status_code == 401
    assert (await _login(server, alice, "alice password")).status_code == 403
    members = (await server.api("GET", f"rooms/{quote(joined)}/joined_members", bob)).json()["joined"]
    assert alice.user_id not in members
    state = await server.api("GET", f"rooms/{quote(invited)}/state/m.room.member/{quote(alice.user_id)}", bob)
    assert state.json()["membership"] == "leave"  # the invitation was declined
    assert (await server.api("GET", f"profile/{quote(alice.user_id)}", bob)).status_code == 404
    with server.hs.database.activated():
        assert await server.hs.services.devices.list_json(alice.user_id) == []
    # The name stays taken.
    again = await server.api("GET", "register/available", params={"username": _localpart(alice)})
    assert again.status_code == 400 and again.json()["errcode"] == "M_USER_IN_USE"


async def test_capabilities(server: RunningServer) -> None:
    alice = await server.register()
    response = await server.api("GET", "capabilities", alice)
    assert response.status_code == 200
    caps = response.json()["capabilities"]
    assert caps["m.change_password"] == {"enabled": True}
    assert caps["m.room_versions"]["default"] == "11"
    assert caps["m.room_versions"]["available"]["11"] == "stable"
    assert (await server.api("GET", "capabilities")).status_code == 401


async def test_turn_server_and_thirdparty_protocols_answer_empty(server: RunningServer) -> None:
    alice = await server.register()
    for path in ("voip/turnServer", "thirdparty/protocols"):
        response = await server.api("GET", path, alice)
        assert response.status_code == 200 and response.json() == {}, path
        assert (await server.api("GET", path)).status_code == 401

"""Admin API for accounts over real HTTP: list, query, create/modify, deactivate, passwords,
login-as with its audit entry, admin flag, devices, whois, joined rooms."""

from __future__ import annotations

from tests.homeserver.admin.helpers import A1, A2, expect
from tests.homeserver.room_helpers import create_room
from tests.support.server import Account, RunningServer


async def test_list_and_search_users(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bobby")
    expect(await server.api("PUT", "profile/" + alice.user_id + "/displayname", alice,
                            json={"displayname": "Alice Liddell"}))
    body = expect(await server.api("GET", A2 + "/users", admin))
    names = [u["name"] for u in body["users"]]
    assert {alice.user_id, bob.user_id, admin.user_id} <= set(names)
    assert body["total"] == len(names)
    found = expect(await server.api("GET", A2 + "/users", admin, params={"name": "liddell"}))
    assert [u["name"] for u in found["users"]] == [alice.user_id]
    assert found["users"][0]["displayname"] == "Alice Liddell"
    by_id = expect(await server.api("GET", A2 + "/users", admin, params={"user_id": "bobby"}))
    assert [u["name"] for u in by_id["users"]] == [bob.user_id]
    admins = expect(await server.api("GET", A2 + "/users", admin, params={"admins": "true"}))
    assert [u["name"] for u in admins["users"]] == [admin.user_id]
    page = expect(await server.api("GET", A2 + "/users", admin, params={"limit": 1}))
    assert len(page["users"]) == 1 and page["next_token"] == "1"
    expect(await server.api("GET", A2 + "/users", admin, params={"limit": "x"}), 400, "M_INVALID_PARAM")


async def test_query_user(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    body = expect(await server.api("GET", f"{A2}/users/{alice.user_id}", admin))
    assert body["name"] == alice.user_id
    assert body["admin"] is False and body["deactivated"] is False and body["locked"] is False
    assert isinstance(body["creation_ts"], int) and isinstance(body["last_seen_ts"], int)
    missing = f"@nobody:{server.config.server_name}"
    expect(await server.api("GET", f"{A2}/users/{missing}", admin), 404, "M_NOT_FOUND")
    expect(await server.api("GET", f"{A2}/users/@x:elsewhere.example", admin), 400, "M_INVALID_PARAM")


async def test_create_and_modify_user(server: RunningServer, admin: Account) -> None:
    user_id = f"@carol:{server.config.server_name}"
    created = await server.api("PUT", f"{A2}/users/{user_id}", admin, json={
        "password": "carol password 1", "displayname": "Carol", "admin": False,
        "threepids": [{"medium": "email", "address": "Carol@Example.org"}],
    })
    body = expect(created, 201)
    assert body["name"] == user_id and body["displayname"] == "Carol"
    assert body["threepids"] == [{"medium": "email", "address": "carol@example.org"}]
    login = expect(await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "carol"},
        "password": "carol password 1"}))
    carol = Account(user_id, login["device_id"], login["access_token"], "carol password 1")
    # Modify: a new password logs out the devices by default; the admin flag is set.
    modified = await server.api("PUT", f"{A2}/users/{user_id}", admin,
                                json={"password": "carol password 2", "admin": True})
    assert expect(modified, 200)["admin"] is True
    expect(await server.api("GET", "account/whoami", carol), 401, "M_UNKNOWN_TOKEN")
    expect(await server.api("PUT", f"{A2}/users/{user_id}", admin, json={"password": "short"}), 400,
           "M_WEAK_PASSWORD")
    expect(await server.api("PUT", f"{A2}/users/{user_id}", admin, json={"admin": "yes"}), 400,
           "M_INVALID_PARAM")


async def test_deactivate_with_erasure(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    expect(await server.api("PUT", "profile/" + alice.user_id + "/displayname", alice,
                            json={"displayname": "Alice"}))
    room = await create_room(server, bob, invite=[alice.user_id])
    expect(await server.api("POST", f"rooms/{room}/join", alice))
    body = expect(await server.api("POST", f"{A1}/deactivate/{alice.user_id}", admin, json={"erase": True}))
    assert body == {"id_server_unbind_result": "success"}
    expect(await server.api("GET", "account/whoami", alice), 401, "M_UNKNOWN_TOKEN")
    login = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
        "password": alice.password})
    expect(login, 403, "M_FORBIDDEN")
    members = expect(await server.api("GET", f"rooms/{room}/joined_members", bob))["joined"]
    assert alice.user_id not in members
    user = expect(await server.api("GET", f"{A2}/users/{alice.user_id}", admin))
    assert user["deactivated"] is True and user["erased"] is True and user["displayname"] is None
    # Deactivated accounts are listed only on request.
    listed = expect(await server.api("GET", A2 + "/users", admin))
    assert alice.user_id not in [u["name"] for u in listed["users"]]
    listed = expect(await server.api("GET", A2 + "/users", admin, params={"deactivated": "true"}))
    assert alice.user_id in [u["name"] for u in listed["users"]]


async def test_reset_password(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    expect(await server.api("POST", f"{A1}/reset_password/{alice.user_id}", admin,
                            json={"new_password": "brand new password", "logout_devices": True}))
    expect(await server.api("GET", "account/whoami", alice), 401, "M_UNKNOWN_TOKEN")
    login = await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
        "password": "brand new password"})
    expect(login)
    expect(await server.api("POST", f"{A1}/reset_password/{alice.user_id}", admin, json={"new_password": 1}),
           400, "M_WEAK_PASSWORD")


async def test_login_as_user_is_audited(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    body = expect(await server.api("POST", f"{A1}/users/{alice.user_id}/login", admin, json={}))
    puppet = Account(alice.user_id, "", body["access_token"], "")
    assert expect(await server.api("GET", "account/whoami", puppet))["user_id"] == alice.user_id
    entries = await _audit(server, alice.user_id)
    assert [(e["admin_user_id"], e["action"]) for e in entries] == [(admin.user_id, "login_as")]
    expect(await server.api("POST", f"{A1}/users/{admin.user_id}/login", admin, json={}), 400,
           "M_INVALID_PARAM")


async def test_logout_all_ends_a_login_as_session_too(server: RunningServer, admin: Account) -> None:
    """POST /logout/all "invalidates all access tokens for a user" (spec): the one an admin's
    login-as issued has no device row of its own, and survived before."""
    alice = await server.register("alice")
    body = expect(await server.api("POST", f"{A1}/users/{alice.user_id}/login", admin, json={}))
    puppet = Account(alice.user_id, "", body["access_token"], "")
    expect(await server.api("GET", "account/whoami", puppet))
    expect(await server.api("POST", "logout/all", alice, json={}))
    expect(await server.api("GET", "account/whoami", alice), 401, "M_UNKNOWN_TOKEN")
    expect(await server.api("GET", "account/whoami", puppet), 401, "M_UNKNOWN_TOKEN")


async def _audit(server: RunningServer, target: str) -> list[dict[str, object]]:
    repo = server.hs.services.admin.users.repo
    with server.hs.database.activated():
        return await repo.audit_entries(target)


async def test_admin_flag(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    assert expect(await server.api("GET", f"{A1}/users/{alice.user_id}/admin", admin)) == {"admin": False}
    expect(await server.api("GET", A2 + "/users", alice), 403, "M_FORBIDDEN")
    expect(await server.api("PUT", f"{A1}/users/{alice.user_id}/admin", admin, json={"admin": True}))
    assert expect(await server.api("GET", f"{A1}/users/{alice.user_id}/admin", admin)) == {"admin": True}
    expect(await server.api("GET", A2 + "/users", alice))
    expect(await server.api("PUT", f"{A1}/users/{admin.user_id}/admin", admin, json={"admin": False}), 400,
           "M_INVALID_PARAM")


async def test_devices(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    base = f"{A2}/users/{alice.user_id}/devices"
    listed = expect(await server.api("GET", base, admin))
    assert [d["device_id"] for d in listed["devices"]] == [alice.device_id] and listed["total"] == 1
    expect(await server.api("PUT", f"{base}/{alice.device_id}", admin, json={"display_name": "Phone"}))
    one = expect(await server.api("GET", f"{base}/{alice.device_id}", admin))
    assert one["display_name"] == "Phone" and one["user_id"] == alice.user_id
    expect(await server.api("GET", f"{base}/NOSUCH", admin), 404, "M_NOT_FOUND")
    expect(await server.api("DELETE", f"{base}/{alice.device_id}", admin))
    expect(await server.api("GET", "account/whoami", alice), 401, "M_UNKNOWN_TOKEN")
    login = expect(await server.api("POST", "login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": "alice"},
        "password": alice.password}))
    expect(await server.api("POST", f"{A2}/users/{alice.user_id}/delete_devices", admin,
                            json={"devices": [login["device_id"]]}))
    assert expect(await server.api("GET", base, admin))["devices"] == []
    expect(await server.api("POST", f"{A2}/users/{alice.user_id}/delete_devices", admin,
                            json={"devices": "all"}), 400, "M_INVALID_PARAM")


async def test_whois_admin_and_client_endpoints(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    body = expect(await server.api("GET", f"{A1}/whois/{alice.user_id}", admin))
    assert body["user_id"] == alice.user_id
    connections = body["devices"][alice.device_id]["sessions"][0]["connections"]
    assert connections[0]["ip"] == "127.0.0.1"
    client_path = f"/_matrix/client/v3/admin/whois/{alice.user_id}"
    assert expect(await server.api("GET", client_path, admin))["user_id"] == alice.user_id
    assert expect(await server.api("GET", client_path, alice))["user_id"] == alice.user_id
    expect(await server.api("GET", client_path, bob), 403, "M_FORBIDDEN")


async def test_joined_rooms_and_username_available(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    room = await create_room(server, alice)
    body = expect(await server.api("GET", f"{A1}/users/{alice.user_id}/joined_rooms", admin))
    assert body == {"joined_rooms": [room], "total": 1}
    free = await server.api("GET", A1 + "/username_available", admin, params={"username": "free"})
    assert expect(free) == {"available": True}
    taken = await server.api("GET", A1 + "/username_available", admin, params={"username": "alice"})
    expect(taken, 400, "M_USER_IN_USE")


async def test_account_data_and_pushers(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    room = await create_room(server, alice)
    expect(await server.api("PUT", f"user/{alice.user_id}/account_data/org.example.prefs", alice,
                            json={"theme": "dark"}))
    expect(await server.api("PUT", f"user/{alice.user_id}/rooms/{room}/account_data/org.example.note", alice,
                            json={"text": "hi"}))
    body = expect(await server.api("GET", f"{A1}/users/{alice.user_id}/accountdata", admin))
    assert body["account_data"]["global"]["org.example.prefs"] == {"theme": "dark"}
    assert body["account_data"]["rooms"][room]["org.example.note"] == {"text": "hi"}
    assert expect(await server.api("GET", f"{A1}/users/{alice.user_id}/pushers", admin)) == {
        "pushers": [], "total": 0}
    expect(await server.api("GET", f"{A1}/users/@nobody:{server.config.server_name}/pushers", admin), 404,
           "M_NOT_FOUND")

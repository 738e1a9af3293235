"""Registration tokens: admin CRUD and the m.login.registration_token registration stage."""

from __future__ import annotations

from typing import Any

from tests.homeserver.admin.helpers import A1, SECRET, expect, register_with_secret
from tests.support.server import Account, RunningServer, serve_homeserver

VALIDITY = "/_matrix/client/v1/register/m.login.registration_token/validity"


async def test_token_crud(server: RunningServer, admin: Account) -> None:
    created = expect(await server.api("POST", A1 + "/registration_tokens/new", admin,
                                      json={"token": "abcd", "uses_allowed": 2}))
    assert created == {"token": "abcd", "uses_allowed": 2, "pending": 0, "completed": 0, "expiry_time": None}
    generated = expect(await server.api("POST", A1 + "/registration_tokens/new", admin, json={"length": 10}))
    assert len(generated["token"]) == 10
    listed = expect(await server.api("GET", A1 + "/registration_tokens", admin))
    assert {t["token"] for t in listed["registration_tokens"]} >= {"abcd", generated["token"]}
    updated = expect(await server.api("PUT", A1 + "/registration_tokens/abcd", admin, json={"uses_allowed": 0}))
    assert updated["uses_allowed"] == 0
    invalid = expect(await server.api("GET", A1 + "/registration_tokens", admin, params={"valid": "false"}))
    assert [t["token"] for t in invalid["registration_tokens"]] == ["abcd"]
    assert expect(await server.api("GET", A1 + "/registration_tokens/abcd", admin))["uses_allowed"] == 0
    expect(await server.api("DELETE", A1 + "/registration_tokens/abcd", admin))
    expect(await server.api("GET", A1 + "/registration_tokens/abcd", admin), 404, "M_NOT_FOUND")
    expect(await server.api("POST", A1 + "/registration_tokens/new", admin, json={"token": "bad token"}), 400,
           "M_INVALID_PARAM")
    expect(await server.api("POST", A1 + "/registration_tokens/new", admin, json={"token": generated["token"]}),
           400, "M_INVALID_PARAM")
    expect(await server.api("POST", A1 + "/registration_tokens/new", admin, json={"expiry_time": 1}), 400,
           "M_INVALID_PARAM")


async def _register(server: RunningServer, username: str, token: str | None) -> Any:
    body: dict[str, Any] = {"username": username, "password": "token password 1"}
    first = await server.api("POST", "register", json=body)
    assert first.status_code == 401, first.text
    flows = first.json()["flows"]
    assert all(f["stages"][0] == "m.login.registration_token" for f in flows)
    session = first.json()["session"]
    if token is not None:
        second = await server.api("POST", "register", json={
            **body, "auth": {"type": "m.login.registration_token", "token": token, "session": session}})
        if second.status_code != 401:
            return second
    return await server.api("POST", "register", json={**body, "auth": {"type": "m.login.dummy",
                                                                        "session": session}})


async def test_registration_requires_a_valid_token(make_config: Any) -> None:
    config = make_config(registration={"open": True, "require_email": False, "shared_secret": SECRET,
                                       "require_token": True})
    async with serve_homeserver(config) as server:
        admin = await register_with_secret(server, "root", "admin password 1", admin=True)
        expect(await server.api("POST", A1 + "/registration_tokens/new", admin,
                                json={"token": "once", "uses_allowed": 1}))
        assert expect(await server.client.get(VALIDITY, params={"token": "once"})) == {"valid": True}
        assert expect(await server.client.get(VALIDITY, params={"token": "nope"})) == {"valid": False}
        expect(await _register(server, "nobody", None), 401)
        expect(await _register(server, "withwrong", "nope"), 401)
        ok = expect(await _register(server, "tokenuser", "once"))
        assert ok["user_id"].startswith("@tokenuser:")
        used = expect(await server.api("GET", A1 + "/registration_tokens/once", admin))
        assert used["completed"] == 1
        assert expect(await server.client.get(VALIDITY, params={"token": "once"})) == {"valid": False}
        expect(await _register(server, "second", "once"), 401)

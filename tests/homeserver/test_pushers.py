"""Pushers over HTTP: set, list, replace, delete, refusals, and their life with the device."""

from __future__ import annotations

from typing import Any

from tests.support.server import Account, RunningServer

GATEWAY = "https://push.example.org/_matrix/push/v1/notify"


def _pusher(pushkey: str = "key1", **extra: Any) -> dict[str, Any]:
    return {"pushkey": pushkey, "kind": "http", "app_id": "org.example.app", "app_display_name": "App",
            "device_display_name": "Phone", "profile_tag": "tag1", "lang": "en", "data": {"url": GATEWAY},
            **extra}


async def _pushers(server: RunningServer, account: Account) -> list[dict[str, Any]]:
    response = await server.api("GET", "pushers", account)
    assert response.status_code == 200, response.text
    return list(response.json()["pushers"])


async def test_set_list_replace_and_delete(server: RunningServer) -> None:
    alice = await server.register()
    assert await _pushers(server, alice) == []
    assert (await server.api("POST", "pushers/set", alice, json=_pusher())).status_code == 200
    listed = await _pushers(server, alice)
    assert listed == [{k: v for k, v in _pusher().items()}]
    # Same app and key: replaced, not added.
    await server.api("POST", "pushers/set", alice, json=_pusher(lang="de"))
    assert [p["lang"] for p in await _pushers(server, alice)] == ["de"]
    await server.api("POST", "pushers/set", alice, json=_pusher("key2"))
    assert {p["pushkey"] for p in await _pushers(server, alice)} == {"key1", "key2"}
    deleted = await server.api("POST", "pushers/set", alice, json={**_pusher(), "kind": None})
    assert deleted.status_code == 200
    assert [p["pushkey"] for p in await _pushers(server, alice)] == ["key2"]

    # Without append a pushkey moves from another user to this one.
    bob = await server.register()
    await server.api("POST", "pushers/set", bob, json=_pusher("key2"))
    assert await _pushers(server, alice) == []
    await server.api("POST", "pushers/set", alice, json=_pusher("key2", append=True))
    assert len(await _pushers(server, alice)) == 1 and len(await _pushers(server, bob)) == 1


async def test_bad_pushers_are_refused(server: RunningServer) -> None:
    alice = await server.register()
    cases = [
        ({k: v for k, v in _pusher().items() if k != "pushkey"}, "M_MISSING_PARAM"),
        ({k: v for k, v in _pusher().items() if k != "app_display_name"}, "M_MISSING_PARAM"),
        ({**_pusher(), "data": {}}, "M_MISSING_PARAM"),
        ({**_pusher(), "data": {"url": "https://push.example.org/elsewhere"}}, "M_INVALID_PARAM"),
        ({**_pusher(), "data": {"url": "ftp://push.example.org/_matrix/push/v1/notify"}}, "M_INVALID_PARAM"),
        ({**_pusher(), "kind": "carrier-pigeon"}, "M_INVALID_PARAM"),
        ({**_pusher(), "pushkey": "x" * 513}, "M_INVALID_PARAM"),
    ]
    for body, errcode in cases:
        response = await server.api("POST", "pushers/set", alice, json=body)
        assert response.status_code == 400, body
        assert response.json()["errcode"] == errcode, body
    assert await _pushers(server, alice) == []


async def test_pushers_go_with_their_device(server: RunningServer) -> None:
    alice = await server.register(password="alice password")
    login = await server.api("POST", "login", json={
        "type": "m.login.password", "password": "alice password",
        "identifier": {"type": "m.id.user", "user": alice.user_id}})
    other = Account(alice.user_id, login.json()["device_id"], login.json()["access_token"], alice.password)
    await server.api("POST", "pushers/set", other, json=_pusher("from-other"))
    await server.api("POST", "pushers/set", alice, json=_pusher("from-here"))
    first = await server.api("POST", "account/password", alice, json={"new_password": "new password 2"})
    auth = {"type": "m.login.password", "password": "alice password", "session": first.json()["session"],
            "identifier": {"type": "m.id.user", "user": alice.user_id}}
    changed = await server.api("POST", "account/password", alice, json={"new_password": "new password 2", "auth": auth})
    assert changed.status_code == 200, changed.text
    assert [p["pushkey"] for p in await _pushers(server, alice)] == ["from-here"]

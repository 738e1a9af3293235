"""The one JSON door: values canonical JSON cannot carry are refused before anything stores them.

Before the door, a to-device message carrying a lone surrogate was accepted
and every later /sync of the victim answered 500 (it is only deleted when a
sync acknowledges it, which never succeeded); with 1e400 the sync body
carried a bare Infinity.
"""

from __future__ import annotations

import json

import pytest

from tests.homeserver.room_helpers import create_room, sync
from tests.support.server import Account, RunningServer

HOSTILE = {
    "lone_surrogate": ('"\\ud800"', "M_BAD_JSON"),
    "huge_float": ("1e400", "M_BAD_JSON"),
    "float": ("1.5", "M_BAD_JSON"),
    "int_above_2_53": ("9007199254740992", "M_BAD_JSON"),
    "int_below_minus_2_53": ("-9007199254740992", "M_BAD_JSON"),
    "nan": ("NaN", "M_NOT_JSON"),
    "deep": ("[" * 600 + "]" * 600, "M_BAD_JSON"),
}


async def _put_raw(server: RunningServer, path: str, account: Account, raw: str, method: str = "PUT") -> tuple[int, dict]:
    response = await server.client.request(
        method, "/_matrix/client/v3/" + path, content=raw.encode(),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    return response.status_code, response.json()


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_to_device_with_hostile_values_is_refused_and_the_victims_sync_survives(
    server: RunningServer, kind: str,
) -> None:
    leaf, errcode = HOSTILE[kind]
    mallory = await server.register()
    victim = await server.register()
    before = await sync(server, victim)
    raw = '{"messages":{"' + victim.user_id + '":{"*":{"x":' + leaf + '}}}}'
    status, body = await _put_raw(server, "sendToDevice/m.x/t1", mallory, raw)
    assert (status, body["errcode"]) == (400, errcode), body
    # The victim's next syncs answer, and carry valid JSON.
    for _ in range(2):
        response = await server.api("GET", "sync", victim, params={"since": before["next_batch"], "timeout": 0})
        assert response.status_code == 200, response.text
        json.loads(response.text, parse_constant=lambda name: pytest.fail(f"{name} in /sync"))
        assert response.json()["to_device"]["events"] == []


@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_hostile_values_are_refused_on_send_state_profile_and_account_data(
    server: RunningServer, kind: str,
) -> None:
    leaf, errcode = HOSTILE[kind]
    alice = await server.register()
    room = await create_room(server, alice)
    targets = [
        ("PUT", f"rooms/{room}/send/m.room.message/t-{kind}", '{"msgtype":"m.text","body":"x","n":%s}'),
        ("PUT", f"rooms/{room}/state/m.room.topic", '{"topic":%s}'),
        ("POST", "createRoom", '{"creation_content":{"x":%s}}'),
        ("PUT", f"profile/{alice.user_id}/displayname", '{"displayname":"a","x":%s}'),
        ("PUT", f"user/{alice.user_id}/account_data/org.x", '{"v":%s}'),
        ("PUT", f"presence/{alice.user_id}/status", '{"presence":"online","status_msg":%s}'),
        ("POST", f"user/{alice.user_id}/filter", '{"room":{"timeline":{"limit":%s}}}'),
        ("POST", "login", '{"type":"m.login.password","password":%s}'),
    ]
    for method, path, template in targets:
        status, body = await _put_raw(server, path, alice, template % leaf, method=method)
        assert (status, body.get("errcode")) == (400, errcode), (path, body)


async def test_tag_order_may_be_a_finite_float_but_not_1e400(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    path = f"user/{alice.user_id}/rooms/{room}/tags/u.work"
    status, _ = await _put_raw(server, path, alice, '{"order":0.25}')
    assert status == 200
    status, body = await _put_raw(server, path, alice, '{"order":1e400}')
    assert (status, body["errcode"]) == (400, "M_BAD_JSON")
    tags = await server.api("GET", f"user/{alice.user_id}/rooms/{room}/tags", alice)
    assert tags.json() == {"tags": {"u.work": {"order": 0.25}}}


async def test_filter_query_parameter_goes_through_the_same_door(server: RunningServer) -> None:
    alice = await server.register()
    response = await server.api("GET", "sync", alice, params={"filter": '{"room":{"timeline":{"limit":1e400}}}'})
    assert response.status_code == 400 and response.json()["errcode"] == "M_BAD_JSON"
    response = await server.api("GET", "sync", alice, params={"filter": "{" * 900})
    assert response.status_code == 400 and response.json()["errcode"] == "M_BAD_JSON"

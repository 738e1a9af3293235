"""Sync filters: POST/GET /user/{userId}/filter, validation, ownership, use by /sync."""

from __future__ import annotations

from typing import Any

import pytest

from tests.homeserver.test_receipts_helpers import create_room, q, send_text, sync
from tests.support.server import RunningServer

FILTER: dict[str, Any] = {
    "room": {
        "timeline": {"limit": 2, "not_types": ["m.room.member"]},
        "state": {"lazy_load_members": True},
        "ephemeral": {"types": ["m.receipt"]},
        "account_data": {"not_types": ["m.tag"]},
    },
    "presence": {"types": ["m.presence"], "limit": 10},
    "account_data": {"not_types": ["x.*"]},
    "event_fields": ["type", "content"],
    "event_format": "client",
}


async def test_create_and_get_filter(server: RunningServer) -> None:
    alice = await server.register()
    created = await server.api("POST", f"user/{q(alice.user_id)}/filter", alice, json=FILTER)
    assert created.status_code == 200, created.text
    body = created.json()
    assert set(body) == {"filter_id"}
    filter_id = body["filter_id"]
    assert isinstance(filter_id, str) and filter_id and not filter_id.startswith("{")

    got = await server.api("GET", f"user/{q(alice.user_id)}/filter/{filter_id}", alice)
    assert got.status_code == 200, got.text
    assert got.json() == FILTER

    # Uploading the same filter again reuses the id; a different one gets another.
    again = await server.api("POST", f"user/{q(alice.user_id)}/filter", alice, json=FILTER)
    assert again.json()["filter_id"] == filter_id
    other = await server.api("POST", f"user/{q(alice.user_id)}/filter", alice, json={})
    assert other.status_code == 200
    assert other.json()["filter_id"] != filter_id
    empty = await server.api("GET", f"user/{q(alice.user_id)}/filter/{other.json()['filter_id']}", alice)
    assert empty.json() == {}


async def test_filters_belong_to_their_user(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    created = await server.api("POST", f"user/{q(alice.user_id)}/filter", alice, json=FILTER)
    filter_id = created.json()["filter_id"]

    # Bob can neither create filters for Alice nor read hers.
    denied = await server.api("POST", f"user/{q(alice.user_id)}/filter", bob, json=FILTER)
    assert denied.status_code == 403
    assert denied.json()["errcode"] == "M_FORBIDDEN"
    read = await server.api("GET", f"user/{q(alice.user_id)}/filter/{filter_id}", bob)
    assert read.status_code == 403
    assert read.json()["errcode"] == "M_FORBIDDEN"
    # Under his own id the filter does not exist.
    own = await server.api("GET", f"user/{q(bob.user_id)}/filter/{filter_id}", bob)
    assert own.status_code == 404
    assert own.json()["errcode"] == "M_NOT_FOUND"

    for bad_id in ("nope", "x" * 300, "%7Bjson%7D"):
        missing = await server.api("GET", f"user/{q(alice.user_id)}/filter/{bad_id}", alice)
        assert missing.status_code == 404, bad_id
        assert missing.json()["errcode"] == "M_NOT_FOUND"

    invalid_user = await server.api("POST", "user/not-a-user/filter", alice, json={})
    assert invalid_user.status_code == 400
    assert invalid_user.json()["errcode"] == "M_INVALID_PARAM"

    unauthenticated = await server.api("POST", f"user/{q(alice.user_id)}/filter", json={})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["errcode"] == "M_MISSING_TOKEN"


@pytest.mark.parametrize(
    "bad",
    [
        {"room": []},
        {"room": {"timeline": {"limit": "ten"}}},
        {"room": {"timeline": {"limit": -1}}},
        {"room": {"timeline": {"limit": True}}},
        {"room": {"timeline": {"types": "m.room.message"}}},
        {"room": {"timeline": {"types": [1, 2]}}},
        {"room": {"timeline": {"senders": ["not a user"]}}},
        {"room": {"rooms": ["not-a-room"]}},
        {"room": {"state": {"lazy_load_members": "yes"}}},
        {"room": {"include_leave": 1}},
        {"room": {"ephemeral": []}},
        {"presence": {"not_types": "*"}},
        {"account_data": 5},
        {"event_format": "xml"},
        {"event_fields": "type"},
    ],
)
async def test_invalid_filters_are_refused(server: RunningServer, bad: dict[str, Any]) -> None:
    alice = await server.register()
    response = await server.api("POST", f"user/{q(alice.user_id)}/filter", alice, json=bad)
    assert response.status_code == 400, bad
    assert response.json()["errcode"] == "M_BAD_JSON"


async def test_filter_body_must_be_a_json_object(server: RunningServer) -> None:
    alice = await server.register()
    path = f"user/{q(alice.user_id)}/filter"
    not_json = await server.api("POST", path, alice, content=b"{nope")
    assert not_json.status_code == 400
    assert not_json.json()["errcode"] == "M_NOT_JSON"
    array = await server.api("POST", path, alice, json=[1])
    assert array.status_code == 400
    assert array.json()["errcode"] == "M_BAD_JSON"


async def test_sync_uses_a_stored_filter(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    for i in range(4):
        await send_text(server, alice, room_id, f"message {i}")
    created = await server.api(
        "POST", f"user/{q(bob.user_id)}/filter", bob,
        json={"room": {"timeline": {"limit": 2}}, "presence": {"not_types": ["*"]}},
    )
    filter_id = created.json()["filter_id"]
    # What the core's /sync calls for filter=<id>.
    with server.hs.database.activated():
        assert (await server.hs.services.filters.get(bob.user_id, filter_id)) == {
            "room": {"timeline": {"limit": 2}}, "presence": {"not_types": ["*"]}
        }
        assert await server.hs.services.filters.get(alice.user_id, filter_id) is None

    body = await sync(server, bob, filter=filter_id)
    timeline = body["rooms"]["join"][room_id]["timeline"]
    assert [e["content"]["body"] for e in timeline["events"]] == ["message 2", "message 3"]
    assert timeline["limited"] is True
    # The presence filter drops every presence event.
    assert body.get("presence", {}).get("events", []) == []

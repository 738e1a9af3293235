"""The deprecated v1 endpoints over HTTP: /events, /initialSync, /rooms/{id}/initialSync."""

from __future__ import annotations

import asyncio
from urllib.parse import quote

from tests.homeserver.room_helpers import create_room, send_text
from tests.homeserver.test_sync import _wait_for_waiter
from tests.support.server import RunningServer


async def test_events_stream_from_now_and_from_a_token(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice, name="v1")
    await send_text(server, alice, room, "before")
    now = await server.api("GET", "/_matrix/client/r0/events", alice, params={"timeout": 0})
    assert now.status_code == 200
    body = now.json()
    assert set(body) == {"start", "end", "chunk"}
    assert not any(e.get("content", {}).get("body") == "before" for e in body["chunk"])

    await send_text(server, alice, room, "after")
    later = (await server.api("GET", "events", alice, params={"from": body["end"], "timeout": 0})).json()
    messages = [e for e in later["chunk"] if e["type"] == "m.room.message"]
    assert [m["content"]["body"] for m in messages] == ["after"]
    assert messages[0]["room_id"] == room
    assert later["start"] == body["end"]
    # Restricting to another room hides it.
    other = await create_room(server, alice)
    only_other = (await server.api("GET", "events", alice,
                                   params={"from": body["end"], "timeout": 0, "room_id": other})).json()
    assert not any(e["type"] == "m.room.message" for e in only_other["chunk"])


async def test_events_long_poll_wakes_on_a_new_message(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    start = (await server.api("GET", "events", alice, params={"timeout": 0})).json()["end"]
    poll = asyncio.create_task(server.api("GET", "events", alice, params={"from": start, "timeout": 20000}))
    await _wait_for_waiter(server, alice.user_id)
    await send_text(server, alice, room, "wake up")
    response = await poll
    assert [e["content"]["body"] for e in response.json()["chunk"] if e["type"] == "m.room.message"] == ["wake up"]


async def test_initial_sync(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, name="Initial")
    for i in range(3):
        await send_text(server, alice, room, f"m{i}")
    invited = await create_room(server, bob)
    await server.api("POST", f"rooms/{quote(invited)}/invite", bob, json={"user_id": alice.user_id})

    response = await server.api("GET", "initialSync", alice, params={"limit": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert {"end", "rooms", "presence", "account_data"} <= set(body)
    by_id = {r["room_id"]: r for r in body["rooms"]}
    mine = by_id[room]
    assert mine["membership"] == "join"
    assert [e["content"]["body"] for e in mine["messages"]["chunk"]] == ["m1", "m2"]
    assert {"start", "end"} <= set(mine["messages"])
    types = {e["type"] for e in mine["state"]}
    assert {"m.room.create", "m.room.member", "m.room.name", "m.room.power_levels"} <= types
    assert by_id[invited]["membership"] == "invite"
    assert by_id[invited]["inviter"] == bob.user_id
    assert (await server.api("GET", "initialSync", alice, params={"archived": "maybe"})).status_code == 400

    # Left rooms appear only with archived=true.
    await server.api("POST", f"rooms/{quote(room)}/leave", alice, json={})
    plain = (await server.api("GET", "initialSync", alice)).json()
    assert room not in {r["room_id"] for r in plain["rooms"]}
    archived = (await server.api("GET", "initialSync", alice, params={"archived": "true"})).json()
    assert {r["room_id"]: r["membership"] for r in archived["rooms"]}[room] == "leave"


async def test_room_initial_sync(server: RunningServer) -> None:
    alice = await server.register()
    stranger = await server.register()
    room = await create_room(server, alice, name="Room initial")
    await send_text(server, alice, room, "hello")
    response = await server.api("GET", f"rooms/{quote(room)}/initialSync", alice)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["room_id"] == room and body["membership"] == "join"
    assert [e["content"]["body"] for e in body["messages"]["chunk"] if e["type"] == "m.room.message"] == ["hello"]
    assert any(e["type"] == "m.room.name" for e in body["state"])
    assert "presence" in body and "receipts" in body
    denied = await server.api("GET", f"rooms/{quote(room)}/initialSync", stranger)
    assert denied.status_code == 403 and denied.json()["errcode"] == "M_FORBIDDEN"


async def test_v1_shapes_presence_user_ids_visibility_and_receipts(server: RunningServer) -> None:
    """What the v1 APIs' clients read: ``user_id`` on events and in presence content,
    each room's directory ``visibility``, and the rooms' read receipts."""
    alice = await server.register()
    public = await create_room(server, alice, preset="public_chat", visibility="public")
    private = await create_room(server, alice)
    event_id = await send_text(server, alice, public, "read me")
    receipt = await server.api("POST", f"rooms/{quote(public)}/receipt/m.read/{quote(event_id)}", alice, json={})
    assert receipt.status_code == 200, receipt.text
    await server.api("GET", "sync", alice, params={"timeout": 0})  # Alice comes online
    body = (await server.api("GET", "initialSync", alice)).json()
    [mine] = [p for p in body["presence"] if p["sender"] == alice.user_id]
    assert mine["content"]["user_id"] == alice.user_id and mine["content"]["presence"] == "online"
    rooms = {r["room_id"]: r for r in body["rooms"]}
    assert rooms[public]["visibility"] == "public" and rooms[private]["visibility"] == "private"
    members = [e for e in rooms[public]["state"] if e["type"] == "m.room.member"]
    assert [e["user_id"] for e in members] == [alice.user_id]
    [read] = [r for r in body["receipts"] if r["room_id"] == public]
    assert alice.user_id in read["content"][event_id]["m.read"]
    room_body = (await server.api("GET", f"rooms/{quote(public)}/initialSync", alice)).json()
    assert any(e["type"] == "m.room.member" and e["user_id"] == alice.user_id for e in room_body["state"])
    assert all(p["content"]["user_id"] == p["sender"] for p in room_body["presence"])


async def test_room_initial_sync_presence_and_world_readable_rooms(server: RunningServer) -> None:
    alice, bob, eve = await server.register(), await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    await send_text(server, alice, room, "hello world")
    assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 200
    # Alice never synced: she is offline, and still listed.
    body = (await server.api("GET", f"rooms/{quote(room)}/initialSync", bob)).json()
    presence = {p["content"]["user_id"]: p["content"]["presence"] for p in body["presence"]}
    assert presence[alice.user_id] == "offline"
    # Eve is no member: refused, until the room is world-readable.
    refused = await server.api("GET", f"rooms/{quote(room)}/initialSync", eve)
    assert refused.status_code == 403, refused.text
    readable = await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", alice,
                                json={"history_visibility": "world_readable"})
    assert readable.status_code == 200, readable.text
    await send_text(server, alice, room, "for everyone")
    peek = await server.api("GET", f"rooms/{quote(room)}/initialSync", eve)
    assert peek.status_code == 200, peek.text
    assert "for everyone" in [e["content"].get("body") for e in peek.json()["messages"]["chunk"]]
    assert any(e["type"] == "m.room.history_visibility" for e in peek.json()["state"])

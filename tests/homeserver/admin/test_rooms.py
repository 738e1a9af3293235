"""Admin API for rooms over real HTTP: list/search, details, members, state, block, delete, notices."""

from __future__ import annotations

from tests.homeserver.admin.helpers import A1, expect
from tests.homeserver.room_helpers import create_room, send_text, sync
from tests.homeserver.test_media_support import DOWNLOAD, media_path, upload_ok
from tests.support.server import Account, RunningServer


async def test_list_search_and_details(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    party = await create_room(server, alice, name="Garden party", invite=[bob.user_id])
    expect(await server.api("POST", f"rooms/{party}/join", bob))
    quiet = await create_room(server, bob, name="Quiet corner")
    listed = expect(await server.api("GET", A1 + "/rooms", admin, params={"limit": 1000}))
    ids = [r["room_id"] for r in listed["rooms"]]
    assert {party, quiet} <= set(ids)
    assert listed["total_rooms"] == len(ids) and listed["offset"] == 0
    found = expect(await server.api("GET", A1 + "/rooms", admin, params={"search_term": "garden"}))
    assert [r["room_id"] for r in found["rooms"]] == [party]
    row = found["rooms"][0]
    assert row["name"] == "Garden party" and row["joined_members"] == 2 and row["joined_local_members"] == 2
    assert row["creator"] == alice.user_id and row["join_rules"] == "invite" and row["public"] is False
    details = expect(await server.api("GET", f"{A1}/rooms/{party}", admin))
    assert details["room_id"] == party and details["name"] == "Garden party" and details["blocked"] is False
    assert details["state_events"] >= 5
    members = expect(await server.api("GET", f"{A1}/rooms/{party}/members", admin))
    assert sorted(members["members"]) == sorted([alice.user_id, bob.user_id]) and members["total"] == 2
    state = expect(await server.api("GET", f"{A1}/rooms/{party}/state", admin))["state"]
    assert ("m.room.name", "") in {(e["type"], e["state_key"]) for e in state}
    expect(await server.api("GET", f"{A1}/rooms/!missing:{server.config.server_name}", admin), 404,
           "M_NOT_FOUND")
    expect(await server.api("GET", A1 + "/rooms", admin, params={"order_by": "nonsense"}), 400,
           "M_INVALID_PARAM")
    by_size = expect(await server.api("GET", A1 + "/rooms", admin, params={"order_by": "size", "limit": 1000}))
    sizes = [r["joined_members"] for r in by_size["rooms"]]
    assert sizes == sorted(sizes, reverse=True)


async def test_block_room_refuses_joins(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    room = await create_room(server, alice, preset="public_chat")
    assert expect(await server.api("GET", f"{A1}/rooms/{room}/block", admin)) == {"block": False}
    expect(await server.api("PUT", f"{A1}/rooms/{room}/block", admin, json={"block": True}))
    assert expect(await server.api("GET", f"{A1}/rooms/{room}/block", admin)) == {
        "block": True, "user_id": admin.user_id}
    expect(await server.api("POST", f"rooms/{room}/join", bob), 403, "M_FORBIDDEN")
    expect(await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": bob.user_id}), 403,
           "M_FORBIDDEN")
    expect(await server.api("PUT", f"{A1}/rooms/{room}/block", admin, json={"block": False}))
    expect(await server.api("POST", f"rooms/{room}/join", bob))
    expect(await server.api("PUT", f"{A1}/rooms/{room}/block", admin, json={"block": "yes"}), 400,
           "M_INVALID_PARAM")


async def test_delete_room_with_purge_removes_members_events_and_media(server: RunningServer,
                                                                        admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    room = await create_room(server, alice, invite=[bob.user_id])
    expect(await server.api("POST", f"rooms/{room}/join", bob))
    await send_text(server, alice, room, "to be purged")
    uri = await upload_ok(server, alice, b"attachment bytes")
    message = await send_text(server, alice, room, "file")
    expect(await server.api("POST", "/_matrix/client/unstable/im.parley/media/attach", alice, json={
        "room_id": room, "event_id": message, "media_ids": [uri.rsplit("/", 1)[1]]}))
    body = expect(await server.api("DELETE", f"{A1}/rooms/{room}", admin, json={"block": True, "purge": True}))
    assert sorted(body["kicked_users"]) == sorted([alice.user_id, bob.user_id])
    assert body["failed_to_kick_users"] == [] and body["new_room_id"] is None
    expect(await server.api("GET", f"{A1}/rooms/{room}", admin), 404, "M_NOT_FOUND")
    assert room not in expect(await server.api("GET", "joined_rooms", bob))["joined_rooms"]
    expect(await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers), 404, "M_NOT_FOUND")
    assert expect(await server.api("GET", f"{A1}/rooms/{room}/block", admin))["block"] is True
    expect(await server.api("DELETE", f"{A1}/rooms/!gone:{server.config.server_name}", admin, json={}), 404,
           "M_NOT_FOUND")


async def test_server_notice_reaches_the_user(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    content = {"msgtype": "m.text", "body": "Maintenance tonight"}
    body = expect(await server.api("POST", A1 + "/send_server_notice", admin,
                                   json={"user_id": alice.user_id, "content": content}))
    assert body["event_id"].startswith("$")
    invites = (await sync(server, alice))["rooms"]["invite"]
    assert len(invites) == 1
    room = next(iter(invites))
    expect(await server.api("POST", f"rooms/{room}/join", alice))
    again = expect(await server.api("POST", A1 + "/send_server_notice", admin,
                                    json={"user_id": alice.user_id, "content": {"msgtype": "m.text", "body": "2"}}))
    event = expect(await server.api("GET", f"rooms/{room}/event/{again['event_id']}", alice))
    assert event["sender"] == f"@server:{server.config.server_name}"
    messages = expect(await server.api("GET", f"rooms/{room}/messages", alice, params={"dir": "b"}))
    bodies = [e["content"].get("body") for e in messages["chunk"] if e["type"] == "m.room.message"]
    assert bodies == ["2", "Maintenance tonight"]
    expect(await server.api("POST", A1 + "/send_server_notice", admin, json={"user_id": alice.user_id}), 400,
           "M_INVALID_PARAM")


async def test_room_messages_for_admins_outside_the_room(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    room = await create_room(server, alice)
    for i in range(3):
        await send_text(server, alice, room, f"m{i}")
    first = expect(await server.api("GET", f"{A1}/rooms/{room}/messages", admin, params={"dir": "b", "limit": 2}))
    bodies = [e["content"].get("body") for e in first["chunk"]]
    assert bodies == ["m2", "m1"] and "end" in first
    rest = expect(await server.api("GET", f"{A1}/rooms/{room}/messages", admin,
                                   params={"dir": "b", "from": first["end"], "limit": 50}))
    assert [e["content"].get("body") for e in rest["chunk"] if e["type"] == "m.room.message"] == ["m0"]
    forward = expect(await server.api("GET", f"{A1}/rooms/{room}/messages", admin, params={"limit": 50}))
    assert forward["chunk"][0]["type"] == "m.room.create"
    expect(await server.api("GET", f"{A1}/rooms/{room}/messages", admin, params={"dir": "x"}), 400,
           "M_INVALID_PARAM")

"""Admin room tools over real HTTP: v2 delete with status, force join, make room admin,
per-user media statistics."""

from __future__ import annotations

from tests.homeserver.admin.helpers import A1, A2, expect
from tests.homeserver.room_helpers import create_room, send_text
from tests.homeserver.test_media_support import upload_ok
from tests.support.server import Account, RunningServer


async def test_delete_v2_and_its_status(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    room = await create_room(server, alice)
    delete_id = expect(await server.api("DELETE", f"{A2}/rooms/{room}", admin, json={"purge": True}))["delete_id"]
    status = expect(await server.api("GET", f"{A2}/rooms/delete_status/{delete_id}", admin))
    assert status["status"] == "complete" and status["shutdown_room"]["kicked_users"] == [alice.user_id]
    by_room = expect(await server.api("GET", f"{A2}/rooms/{room}/delete_status", admin))
    assert [r["delete_id"] for r in by_room["results"]] == [delete_id]
    expect(await server.api("GET", f"{A1}/rooms/{room}", admin), 404, "M_NOT_FOUND")
    failed_id = expect(await server.api("DELETE", f"{A2}/rooms/!gone:{server.config.server_name}", admin,
                                        json={}))["delete_id"]
    assert expect(await server.api("GET", f"{A2}/rooms/delete_status/{failed_id}", admin))["status"] == "failed"
    expect(await server.api("GET", f"{A2}/rooms/delete_status/nope", admin), 404, "M_NOT_FOUND")


async def test_force_join_and_make_room_admin(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    public = await create_room(server, alice, preset="public_chat")
    expect(await server.api("POST", f"{A1}/join/{public}", admin, json={"user_id": bob.user_id}))
    assert public in expect(await server.api("GET", "joined_rooms", bob))["joined_rooms"]
    private = await create_room(server, alice)
    # Not public and the admin is not in it: refused.
    expect(await server.api("POST", f"{A1}/join/{private}", admin, json={"user_id": bob.user_id}), 403,
           "M_FORBIDDEN")
    expect(await server.api("POST", f"{A1}/rooms/{private}/make_room_admin", admin, json={}))
    power = expect(await server.api("GET", f"rooms/{private}/state/m.room.power_levels", admin))
    assert power["users"][admin.user_id] == 100
    # Now the admin is in the room and may invite: force join works.
    expect(await server.api("POST", f"{A1}/join/{private}", admin, json={"user_id": bob.user_id}))
    assert private in expect(await server.api("GET", "joined_rooms", bob))["joined_rooms"]
    expect(await server.api("POST", f"{A1}/join/{private}", admin, json={}), 400, "M_INVALID_PARAM")


async def test_media_statistics(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    await upload_ok(server, alice, b"x" * 10)
    await upload_ok(server, alice, b"y" * 5)
    await upload_ok(server, bob, b"z" * 100)
    body = expect(await server.api("GET", A1 + "/statistics/users/media", admin,
                                   params={"order_by": "media_length", "dir": "b"}))
    rows = [(u["user_id"], u["media_count"], u["media_length"]) for u in body["users"]]
    assert rows == [(bob.user_id, 1, 100), (alice.user_id, 2, 15)] and body["total"] == 2
    searched = expect(await server.api("GET", A1 + "/statistics/users/media", admin,
                                       params={"search_term": "alice"}))
    assert [u["user_id"] for u in searched["users"]] == [alice.user_id]
    expect(await server.api("GET", A1 + "/statistics/users/media", admin, params={"order_by": "x"}), 400,
           "M_INVALID_PARAM")


async def _bodies(server: RunningServer, account: Account, room: str) -> list[str]:
    chunk = expect(await server.api("GET", f"rooms/{room}/messages", account,
                                    params={"dir": "b", "limit": 100}))["chunk"]
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


async def test_purge_history(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    room = await create_room(server, alice, name="Long history")
    await send_text(server, alice, room, "one")
    await send_text(server, alice, room, "two")
    three = await send_text(server, alice, room, "three")
    await send_text(server, alice, room, "four")
    # Local users' events are kept unless delete_local_events is set.
    kept = expect(await server.api("POST", f"{A1}/purge_history/{room}/{three}", admin, json={}))
    assert expect(await server.api("GET", f"{A1}/purge_history_status/{kept['purge_id']}", admin)) == {
        "status": "complete"}
    assert await _bodies(server, alice, room) == ["four", "three", "two", "one"]
    expect(await server.api("POST", f"{A1}/purge_history/{room}/{three}", admin,
                            json={"delete_local_events": True}))
    assert await _bodies(server, alice, room) == ["four", "three"]
    assert expect(await server.api("GET", f"rooms/{room}/state/m.room.name", alice)) == {"name": "Long history"}
    expect(await server.api("POST", f"{A1}/purge_history/{room}", admin,
                            json={"purge_up_to_ts": 2**50, "delete_local_events": True}))
    assert await _bodies(server, alice, room) == ["four"]  # the latest event is kept
    expect(await server.api("POST", f"{A1}/purge_history/{room}", admin, json={}), 400, "M_INVALID_PARAM")
    expect(await server.api("POST", f"{A1}/purge_history/{room}/$nope", admin, json={}), 404, "M_NOT_FOUND")
    expect(await server.api("GET", f"{A1}/purge_history_status/nope", admin), 404, "M_NOT_FOUND")

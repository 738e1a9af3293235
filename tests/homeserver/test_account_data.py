"""Account data (global, per room, m.direct), room tags (m.favourite) and their /sync delivery."""

from __future__ import annotations

import asyncio

from tests.homeserver.test_receipts_helpers import (
    create_room,
    global_account_data,
    q,
    room_account_data,
    sync,
    sync_until,
)
from tests.support.server import RunningServer

ROOM = "!notreal:example.org"


async def test_global_account_data_roundtrip(server: RunningServer) -> None:
    alice = await server.register()
    path = f"user/{q(alice.user_id)}/account_data/org.example.settings"
    missing = await server.api("GET", path, alice)
    assert missing.status_code == 404
    assert missing.json()["errcode"] == "M_NOT_FOUND"

    put = await server.api("PUT", path, alice, json={"theme": "dark", "n": [1, 2]})
    assert put.status_code == 200
    assert put.json() == {}
    got = await server.api("GET", path, alice)
    assert got.status_code == 200
    assert got.json() == {"theme": "dark", "n": [1, 2]}

    # Overwritten, not merged.
    await server.api("PUT", path, alice, json={"theme": "light"})
    assert (await server.api("GET", path, alice)).json() == {"theme": "light"}

    # m.direct: user id -> list of room ids.
    direct = f"user/{q(alice.user_id)}/account_data/m.direct"
    ok = await server.api("PUT", direct, alice, json={"@bob:example.org": ["!a:example.org"]})
    assert ok.status_code == 200
    bad = await server.api("PUT", direct, alice, json={"@bob:example.org": "!a:example.org"})
    assert bad.status_code == 400
    assert bad.json()["errcode"] == "M_BAD_JSON"


async def test_account_data_refusals(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    path = f"user/{q(alice.user_id)}/account_data/org.example.x"
    await server.api("PUT", path, alice, json={"secret": 1})

    for method in ("GET", "PUT"):
        response = await server.api(method, path, bob, json={} if method == "PUT" else None)
        assert response.status_code == 403, method
        assert response.json()["errcode"] == "M_FORBIDDEN"
        room_path = f"user/{q(alice.user_id)}/rooms/{q(ROOM)}/account_data/org.example.x"
        response = await server.api(method, room_path, bob, json={} if method == "PUT" else None)
        assert response.status_code == 403, method
        assert response.json()["errcode"] == "M_FORBIDDEN"

    # Server-managed types.
    fully_read = await server.api(
        "PUT", f"user/{q(alice.user_id)}/account_data/m.fully_read", alice, json={"event_id": "$x"}
    )
    assert fully_read.status_code == 405
    assert fully_read.json()["errcode"] == "M_BAD_JSON"
    room_fully_read = await server.api(
        "PUT", f"user/{q(alice.user_id)}/rooms/{q(ROOM)}/account_data/m.fully_read", alice,
        json={"event_id": "$x"},
    )
    assert room_fully_read.status_code == 405
    assert room_fully_read.json()["errcode"] == "M_BAD_JSON"

    # Bodies must be JSON objects.
    not_json = await server.api("PUT", path, alice, content=b"not json")
    assert not_json.status_code == 400
    assert not_json.json()["errcode"] == "M_NOT_JSON"
    array = await server.api("PUT", path, alice, json=["a"])
    assert array.status_code == 400
    assert array.json()["errcode"] == "M_BAD_JSON"

    # Room ids are validated.
    bad_room = await server.api(
        "PUT", f"user/{q(alice.user_id)}/rooms/not-a-room/account_data/org.example.x", alice, json={}
    )
    assert bad_room.status_code == 400
    assert bad_room.json()["errcode"] == "M_INVALID_PARAM"
    bad_room_get = await server.api(
        "GET", f"user/{q(alice.user_id)}/rooms/{q('@user:example.org')}/account_data/x", alice
    )
    assert bad_room_get.status_code == 400
    assert bad_room_get.json()["errcode"] == "M_INVALID_PARAM"
    bad_user = await server.api("GET", "user/nobody/account_data/x", alice)
    assert bad_user.status_code in (400, 403)


async def test_room_account_data_roundtrip(server: RunningServer) -> None:
    alice = await server.register()
    room_id = await create_room(server, alice)
    path = f"user/{q(alice.user_id)}/rooms/{q(room_id)}/account_data/org.example.draft"
    missing = await server.api("GET", path, alice)
    assert missing.status_code == 404
    assert missing.json()["errcode"] == "M_NOT_FOUND"
    assert (await server.api("PUT", path, alice, json={"text": "draft"})).json() == {}
    assert (await server.api("GET", path, alice)).json() == {"text": "draft"}
    # Global data of the same type is separate.
    global_path = f"user/{q(alice.user_id)}/account_data/org.example.draft"
    assert (await server.api("GET", global_path, alice)).status_code == 404


async def test_tags(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice)
    base = f"user/{q(alice.user_id)}/rooms/{q(room_id)}/tags"
    empty = await server.api("GET", base, alice)
    assert empty.status_code == 200
    assert empty.json() == {"tags": {}}

    assert (await server.api("PUT", f"{base}/m.favourite", alice, json={"order": 0.25})).json() == {}
    assert (await server.api("PUT", f"{base}/u.work", alice, json={})).status_code == 200
    assert (await server.api("GET", base, alice)).json() == {
        "tags": {"m.favourite": {"order": 0.25}, "u.work": {}}
    }
    # Tags are the room's m.tag account data.
    tag_data = await server.api(
        "GET", f"user/{q(alice.user_id)}/rooms/{q(room_id)}/account_data/m.tag", alice
    )
    assert tag_data.json() == {"tags": {"m.favourite": {"order": 0.25}, "u.work": {}}}

    deleted = await server.api("DELETE", f"{base}/u.work", alice)
    assert deleted.status_code == 200
    assert deleted.json() == {}
    # Deleting a tag that is not there is fine.
    assert (await server.api("DELETE", f"{base}/u.none", alice)).status_code == 200
    assert (await server.api("GET", base, alice)).json() == {"tags": {"m.favourite": {"order": 0.25}}}

    refused = await server.api("PUT", f"{base}/m.favourite", bob, json={})
    assert refused.status_code == 403
    assert refused.json()["errcode"] == "M_FORBIDDEN"
    assert (await server.api("GET", base, bob)).status_code == 403
    assert (await server.api("DELETE", f"{base}/m.favourite", bob)).status_code == 403
    bad_order = await server.api("PUT", f"{base}/m.lowpriority", alice, json={"order": "first"})
    assert bad_order.status_code == 400
    assert bad_order.json()["errcode"] == "M_BAD_JSON"
    bad_body = await server.api("PUT", f"{base}/m.lowpriority", alice, json=[1])
    assert bad_body.status_code == 400
    long_tag = await server.api("PUT", f"{base}/{'t' * 300}", alice, json={})
    assert long_tag.status_code == 400
    assert long_tag.json()["errcode"] == "M_INVALID_PARAM"
    bad_room = await server.api("GET", f"user/{q(alice.user_id)}/rooms/nope/tags", alice)
    assert bad_room.status_code == 400


async def test_concurrent_tag_writes_lose_nothing(server: RunningServer) -> None:
    alice = await server.register()
    room_id = await create_room(server, alice)
    base = f"user/{q(alice.user_id)}/rooms/{q(room_id)}/tags"
    results = await asyncio.gather(
        *(server.api("PUT", f"{base}/u.tag{i}", alice, json={"order": i / 10}) for i in range(8))
    )
    assert all(r.status_code == 200 for r in results)
    tags = (await server.api("GET", base, alice)).json()["tags"]
    assert set(tags) == {f"u.tag{i}" for i in range(8)}


async def test_account_data_in_sync(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    user = q(alice.user_id)
    await server.api("PUT", f"user/{user}/account_data/m.direct", alice, json={bob.user_id: [room_id]})
    await server.api("PUT", f"user/{user}/rooms/{q(room_id)}/tags/m.favourite", alice, json={"order": 0.5})

    initial = await sync(server, alice)
    assert global_account_data(initial)["m.direct"] == {bob.user_id: [room_id]}
    assert room_account_data(initial, room_id)["m.tag"] == {"tags": {"m.favourite": {"order": 0.5}}}
    # Nobody else sees Alice's account data.
    bob_initial = await sync(server, bob)
    assert "m.direct" not in global_account_data(bob_initial)
    assert "m.tag" not in room_account_data(bob_initial, room_id)

    # Incremental: only what changed, and a waiting long-poll wakes for it.
    since = initial["next_batch"]
    waiting = asyncio.create_task(
        sync_until(server, alice, since, lambda b: bool(global_account_data(b)), timeout_ms=10_000)
    )
    await asyncio.sleep(0.2)
    await server.api("PUT", f"user/{user}/account_data/org.example.a", alice, json={"v": 1})
    woken = await asyncio.wait_for(waiting, 30)
    assert global_account_data(woken) == {"org.example.a": {"v": 1}}
    assert room_account_data(woken, room_id) == {}

    await server.api("DELETE", f"user/{user}/rooms/{q(room_id)}/tags/m.favourite", alice)
    later = await sync(server, alice, woken["next_batch"])
    assert global_account_data(later) == {}
    assert room_account_data(later, room_id) == {"m.tag": {"tags": {}}}

    # Nothing new: an incremental sync times out empty of account data.
    quiet = await sync(server, alice, later["next_batch"], timeout_ms=200)
    assert global_account_data(quiet) == {}
    assert room_account_data(quiet, room_id) == {}

    # The account_data filter applies.
    filtered = await sync(
        server, alice, filter='{"account_data": {"not_types": ["m.direct"]}, '
                               '"room": {"account_data": {"types": ["x.none"]}}}'
    )
    assert "m.direct" not in global_account_data(filtered)
    assert "org.example.a" in global_account_data(filtered)
    assert room_account_data(filtered, room_id) == {}

"""Read receipts (m.read, m.read.private, threads), read markers (m.fully_read), m.receipt in /sync."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.homeserver.test_receipts_helpers import (
    create_room,
    ephemeral,
    q,
    room_account_data,
    send_text,
    sync,
)
from tests.support.server import Account, RunningServer


def receipts(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    """Merged m.receipt content of the room in a sync response."""
    merged: dict[str, Any] = {}
    for event in ephemeral(body, room_id, "m.receipt"):
        assert set(event) == {"type", "content"}
        for event_id, by_type in event["content"].items():
            for receipt_type, by_user in by_type.items():
                merged.setdefault(event_id, {}).setdefault(receipt_type, {}).update(by_user)
    return merged


async def post_receipt(server: RunningServer, account: Account, room_id: str, event_id: str,
                       receipt_type: str = "m.read", body: Any = None) -> Any:
    return await server.api(
        "POST", f"rooms/{q(room_id)}/receipt/{receipt_type}/{q(event_id)}", account,
        json=body if body is not None else {},
    )


async def test_read_receipt_reaches_the_room(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    event_id = await send_text(server, alice, room_id)
    alice_initial = await sync(server, alice)

    waiting = asyncio.create_task(sync(server, alice, alice_initial["next_batch"], timeout_ms=10_000))
    await asyncio.sleep(0.1)
    response = await post_receipt(server, bob, room_id, event_id)
    assert response.status_code == 200
    assert response.json() == {}
    woken = await asyncio.wait_for(waiting, 15)
    got = receipts(woken, room_id)
    assert list(got) == [event_id]
    assert set(got[event_id]["m.read"]) == {bob.user_id}
    assert isinstance(got[event_id]["m.read"][bob.user_id]["ts"], int)
    assert "thread_id" not in got[event_id]["m.read"][bob.user_id]

    # The same receipt again changes nothing.
    assert (await post_receipt(server, bob, room_id, event_id)).status_code == 200
    quiet = await sync(server, alice, woken["next_batch"], timeout_ms=200)
    assert receipts(quiet, room_id) == {}

    # An initial sync carries the room's current receipts.
    assert bob.user_id in receipts(await sync(server, alice), room_id)[event_id]["m.read"]


async def test_private_receipts_are_only_for_their_owner(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    event_id = await send_text(server, alice, room_id)
    alice_initial = await sync(server, alice)
    bob_initial = await sync(server, bob)
    assert (await post_receipt(server, bob, room_id, event_id, "m.read.private")).status_code == 200

    bob_next = await sync(server, bob, bob_initial["next_batch"])
    assert set(receipts(bob_next, room_id)[event_id]["m.read.private"]) == {bob.user_id}
    alice_next = await sync(server, alice, alice_initial["next_batch"], timeout_ms=200)
    assert receipts(alice_next, room_id) == {}
    assert receipts(await sync(server, alice), room_id) == {}
    assert "m.read.private" in receipts(await sync(server, bob), room_id)[event_id]


async def test_threaded_receipts(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    root = await send_text(server, alice, room_id, "root")
    await send_text(server, alice, room_id, "reply")
    assert (await post_receipt(server, bob, room_id, root, body={"thread_id": "main"})).status_code == 200
    got = receipts(await sync(server, alice), room_id)
    assert got[root]["m.read"][bob.user_id]["thread_id"] == "main"
    assert (await post_receipt(server, bob, room_id, root, body={"thread_id": root})).status_code == 200
    for bad in ({"thread_id": 5}, {"thread_id": "thread"}, {"thread_id": "$" + "a" * 200}):
        response = await post_receipt(server, bob, room_id, root, body=bad)
        assert response.status_code == 400, bad
        assert response.json()["errcode"] == "M_INVALID_PARAM"
    fully_read_thread = await post_receipt(server, bob, room_id, root, "m.fully_read", {"thread_id": "main"})
    assert fully_read_thread.status_code == 400


async def test_receipt_refusals(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    room_id = await create_room(server, alice, bob)
    other_room = await create_room(server, carol)
    event_id = await send_text(server, alice, room_id)
    foreign_event = await send_text(server, carol, other_room)

    unknown = await post_receipt(server, bob, room_id, "$" + "A" * 43)
    assert unknown.status_code == 404
    assert unknown.json()["errcode"] == "M_NOT_FOUND"
    elsewhere = await post_receipt(server, bob, room_id, foreign_event)
    assert elsewhere.status_code == 404
    assert elsewhere.json()["errcode"] == "M_NOT_FOUND"
    bad_type = await post_receipt(server, bob, room_id, event_id, "m.seen")
    assert bad_type.status_code == 400
    assert bad_type.json()["errcode"] == "M_INVALID_PARAM"
    bad_event = await post_receipt(server, bob, room_id, "not-an-event")
    assert bad_event.status_code == 400
    assert bad_event.json()["errcode"] == "M_INVALID_PARAM"
    not_joined = await post_receipt(server, carol, room_id, event_id)
    assert not_joined.status_code == 403
    assert not_joined.json()["errcode"] == "M_FORBIDDEN"
    bad_room = await server.api("POST", f"rooms/nope/receipt/m.read/{q(event_id)}", bob, json={})
    assert bad_room.status_code == 400
    assert bad_room.json()["errcode"] == "M_INVALID_PARAM"
    not_object = await post_receipt(server, bob, room_id, event_id, body=[1])
    assert not_object.status_code == 400
    # An empty body is accepted (some clients send none).
    empty = await server.api("POST", f"rooms/{q(room_id)}/receipt/m.read/{q(event_id)}", bob)
    assert empty.status_code == 200


async def test_receipts_only_move_forward(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    first = await send_text(server, alice, room_id, "1")
    second = await send_text(server, alice, room_id, "2")
    await post_receipt(server, bob, room_id, second)
    await post_receipt(server, bob, room_id, first)
    got = receipts(await sync(server, alice), room_id)
    assert bob.user_id in got[second]["m.read"]
    assert bob.user_id not in got.get(first, {}).get("m.read", {})


async def test_read_markers(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    first = await send_text(server, alice, room_id, "1")
    second = await send_text(server, alice, room_id, "2")
    bob_initial = await sync(server, bob)
    path = f"rooms/{q(room_id)}/read_markers"

    response = await server.api(
        "POST", path, bob, json={"m.fully_read": first, "m.read": second, "m.read.private": second}
    )
    assert response.status_code == 200
    assert response.json() == {}
    marker = await server.api(
        "GET", f"user/{q(bob.user_id)}/rooms/{q(room_id)}/account_data/m.fully_read", bob
    )
    assert marker.json() == {"event_id": first}
    bob_next = await sync(server, bob, bob_initial["next_batch"])
    assert room_account_data(bob_next, room_id)["m.fully_read"] == {"event_id": first}
    got = receipts(bob_next, room_id)
    assert set(got[second]) == {"m.read", "m.read.private"}
    alice_view = receipts(await sync(server, alice), room_id)
    assert set(alice_view[second]) == {"m.read"}

    # The receipt endpoint accepts m.fully_read as well.
    fully = await post_receipt(server, bob, room_id, second, "m.fully_read")
    assert fully.status_code == 200
    marker = await server.api(
        "GET", f"user/{q(bob.user_id)}/rooms/{q(room_id)}/account_data/m.fully_read", bob
    )
    assert marker.json() == {"event_id": second}

    assert (await server.api("POST", path, bob, json={})).status_code == 200
    for bad, status in (({"m.read": 5}, 400), ({"m.fully_read": "nope"}, 400),
                        ({"m.read": "$" + "B" * 43}, 404)):
        response = await server.api("POST", path, bob, json=bad)
        assert response.status_code == status, bad
    stranger = await server.register()
    refused = await server.api("POST", path, stranger, json={"m.read": second})
    assert refused.status_code == 403
    assert refused.json()["errcode"] == "M_FORBIDDEN"


async def test_destroyed_group_leaves_no_receipts_typing_or_tags(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    event_id = await send_text(server, alice, room_id)
    assert (await post_receipt(server, bob, room_id, event_id)).status_code == 200
    await server.api("PUT", f"rooms/{q(room_id)}/typing/{q(bob.user_id)}", bob, json={"typing": True})
    await server.api(
        "PUT", f"user/{q(bob.user_id)}/rooms/{q(room_id)}/tags/m.favourite", bob, json={"order": 0.1}
    )
    destroyed = await server.api(
        "POST", f"/_matrix/client/unstable/im.parley/rooms/{q(room_id)}/destroy", alice, json={}
    )
    assert destroyed.status_code == 200, destroyed.text
    db = server.hs.database
    with db.activated():
        for table in ("receipts", "typing", "account_data"):
            rows = await db.fetch(f"SELECT room_id FROM {table} WHERE room_id = ?", (room_id,))
            assert rows == [], table
    tags = await server.api("GET", f"user/{q(bob.user_id)}/rooms/{q(room_id)}/tags", bob)
    assert tags.json() == {"tags": {}}


async def test_joining_a_room_brings_its_current_ephemeral_state(server: RunningServer) -> None:
    """A newly joined room comes with its receipts, typers and members' presence."""
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    room_id = await create_room(server, alice, bob)
    event_id = await send_text(server, alice, room_id)
    assert (await post_receipt(server, bob, room_id, event_id)).status_code == 200
    await server.api("PUT", f"rooms/{q(room_id)}/typing/{q(alice.user_id)}", alice,
                     json={"typing": True, "timeout": 60_000})
    await server.api("PUT", f"presence/{q(alice.user_id)}/status", alice, json={"presence": "online"})

    carol_initial = await sync(server, carol)
    assert room_id not in carol_initial["rooms"]["join"]
    invited = await server.api("POST", f"rooms/{q(room_id)}/invite", alice, json={"user_id": carol.user_id})
    assert invited.status_code == 200, invited.text
    assert (await server.api("POST", f"rooms/{q(room_id)}/join", carol, json={})).status_code == 200

    joined = await sync(server, carol, carol_initial["next_batch"])
    assert bob.user_id in receipts(joined, room_id)[event_id]["m.read"]
    typing = ephemeral(joined, room_id, "m.typing")
    assert typing and typing[-1]["content"]["user_ids"] == [alice.user_id]
    senders = {e["sender"]: e["content"] for e in joined["presence"]["events"]}
    assert senders[alice.user_id]["presence"] == "online"
    assert joined["rooms"]["join"][room_id]["unread_notifications"]["notification_count"] == 0

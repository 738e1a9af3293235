"""Messages over real HTTP: idempotent send, redaction, /messages both ways, /event, /context, PDU format."""

from __future__ import annotations

import json

from homeserver.services.events import compute_event_id, content_hash_matches, verify_event_signature
from tests.homeserver.room_helpers import bodies, create_room, expect_error, send_text, sync, timeline
from tests.support.server import RunningServer


async def test_send_is_idempotent_per_device_and_txn(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    path = f"rooms/{room}/send/m.room.message/same-txn"
    first = await server.api("PUT", path, alice, json={"msgtype": "m.text", "body": "once"})
    again = await server.api("PUT", path, alice, json={"msgtype": "m.text", "body": "once"})
    assert first.status_code == 200 and first.json() == again.json()
    # Another device of the same user with the same txn id is another message.
    login = await server.api("POST", "login", json={"type": "m.login.password", "password": alice.password,
                                                   "identifier": {"type": "m.id.user", "user": alice.user_id}})
    other = dict(login.json())
    headers = {"Authorization": f"Bearer {other['access_token']}"}
    third = await server.client.put(f"/_matrix/client/v3/{path}", json={"msgtype": "m.text", "body": "once"},
                                    headers=headers)
    assert third.status_code == 200 and third.json()["event_id"] != first.json()["event_id"]
    body = await sync(server, alice)
    events = [e for e in timeline(body, room) if e["type"] == "m.room.message"]
    assert len(events) == 2
    # transaction_id only for the sending device.
    mine = next(e for e in events if e["event_id"] == first.json()["event_id"])
    theirs = next(e for e in events if e["event_id"] == third.json()["event_id"])
    assert mine["unsigned"]["transaction_id"] == "same-txn"
    assert "transaction_id" not in theirs["unsigned"]
    await expect_error(await server.api("PUT", f"rooms/{room}/send/m.room.message/bad%20txn", alice, json={}),
                       400, "M_INVALID_PARAM")
    await expect_error(await server.api("PUT", f"rooms/{room}/send/m.room.member/t9", alice, json={}),
                       400, "M_INVALID_PARAM")
    await expect_error(await server.api("PUT", f"rooms/{room}/send/m.room.message/t10", alice, content=b"[]"),
                       400, "M_BAD_JSON")


async def test_stored_events_are_signed_v11_pdus(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    event_id = await send_text(server, alice, room, "pdu")
    rows = await server.hs.database.fetch("SELECT pdu, depth FROM events WHERE room_id = ? ORDER BY stream_pos",
                                          (room,))
    pdus = [json.loads(r["pdu"]) for r in rows]
    key = server.hs.signing_key
    for index, pdu in enumerate(pdus):
        assert content_hash_matches(pdu)
        assert verify_event_signature(pdu, server.config.server_name, key.version, key.private_key.public_key())
        assert pdu["depth"] == index + 1
        if index:
            assert pdu["prev_events"] == [compute_event_id(pdus[index - 1])]
            assert pdu["auth_events"]
    assert compute_event_id(pdus[-1]) == event_id
    assert pdus[0]["type"] == "m.room.create" and pdus[0]["prev_events"] == []


async def test_redaction(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, invite=[bob.user_id])
    await server.api("POST", f"rooms/{room}/join", bob, json={})
    seen: list[tuple[str, dict]] = []

    async def on_redacted(room_id: str, event_id: str, content: dict) -> None:
        seen.append((event_id, content))

    server.hs.services.rooms.on_event_redacted(on_redacted)
    secret = await send_text(server, bob, room, "top secret words")
    other = await send_text(server, bob, room, "keep me")
    # Alice (creator, redact level 100) may redact bob's event; bob may not redact alice's.
    mine = await send_text(server, alice, room, "alice's")
    await expect_error(await server.api("PUT", f"rooms/{room}/redact/{mine}/r1", bob, json={}), 403, "M_FORBIDDEN")
    response = await server.api("PUT", f"rooms/{room}/redact/{secret}/r2", bob, json={"reason": "oops"})
    assert response.status_code == 200
    redaction_id = response.json()["event_id"]
    again = await server.api("PUT", f"rooms/{room}/redact/{secret}/r2", bob, json={"reason": "oops"})
    assert again.json()["event_id"] == redaction_id
    assert (await server.api("PUT", f"rooms/{room}/redact/{other}/r3", alice, json={})).status_code == 200
    assert seen[0] == (secret, {"msgtype": "m.text", "body": "top secret words"})
    # Nothing of the original content is kept.
    rows = await server.hs.database.fetch("SELECT pdu FROM events WHERE room_id = ?", (room,))
    assert not any("top secret words" in r["pdu"] for r in rows)
    event = (await server.api("GET", f"rooms/{room}/event/{secret}", alice)).json()
    assert event["content"] == {}
    assert event["unsigned"]["redacted_because"]["event_id"] == redaction_id
    assert event["unsigned"]["redacted_because"]["content"] == {"redacts": secret, "reason": "oops"}
    redaction = (await server.api("GET", f"rooms/{room}/event/{redaction_id}", alice)).json()
    assert redaction["redacts"] == secret and redaction["type"] == "m.room.redaction"
    await expect_error(await server.api("PUT", f"rooms/{room}/redact/$nope/r4", alice, json={}), 404, "M_NOT_FOUND")
    await expect_error(await server.api("PUT", f"rooms/{room}/redact/bad/r5", alice, json={}), 400, "M_INVALID_PARAM")
    # An event of another room is refused as a bad request, not redacted there.
    elsewhere = await create_room(server, alice)
    foreign = await send_text(server, alice, elsewhere, "stays")
    await expect_error(await server.api("PUT", f"rooms/{room}/redact/{foreign}/r7", alice, json={}),
                       400, "M_INVALID_PARAM")
    assert (await server.api("GET", f"rooms/{elsewhere}/event/{foreign}", alice)).json()["content"]["body"] == "stays"
    # Redacting the room name state event empties it.
    await server.api("PUT", f"rooms/{room}/state/m.room.name", alice, json={"name": "Secret name"})
    name_id = (await server.api("PUT", f"rooms/{room}/state/m.room.name", alice, json={"name": "Public"})).json()
    assert (await server.api("PUT", f"rooms/{room}/redact/{name_id['event_id']}/r6", alice, json={})).status_code == 200
    assert (await server.api("GET", f"rooms/{room}/state/m.room.name", alice)).json() == {}


async def test_messages_pagination_both_ways(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    sent = [await send_text(server, alice, room, f"m{i}") for i in range(25)]
    initial = await sync(server, alice, filter=json.dumps({"room": {"timeline": {"limit": 5}}}))
    tl = initial["rooms"]["join"][room]["timeline"]
    assert tl["limited"] is True and bodies(tl["events"]) == [f"m{i}" for i in range(20, 25)]
    # Backwards from the sync's prev_batch, 7 at a time, until the start.
    seen: list[str] = []
    token = tl["prev_batch"]
    while True:
        page = (await server.api("GET", f"rooms/{room}/messages", alice,
                                 params={"from": token, "dir": "b", "limit": 7})).json()
        seen += [e["event_id"] for e in page["chunk"]]
        if "end" not in page:
            break
        token = page["end"]
    messages = [e for e in seen if e in sent]
    assert messages == list(reversed(sent[:20]))
    assert len(seen) > 20  # the room's state events come last
    # Forwards from the beginning, with a type filter.
    flt = json.dumps({"types": ["m.room.message"]})
    forward: list[str] = []
    token = None
    while True:
        params = {"dir": "f", "limit": 10, "filter": flt}
        if token:
            params["from"] = token
        page = (await server.api("GET", f"rooms/{room}/messages", alice, params=params)).json()
        forward += [e["event_id"] for e in page["chunk"]]
        if "end" not in page:
            break
        token = page["end"]
    assert forward == sent
    # from/to bound the range; a sync token works as "from".
    middle = (await server.api("GET", f"rooms/{room}/messages", alice,
                               params={"from": initial["next_batch"], "dir": "b", "limit": 3})).json()
    assert bodies(middle["chunk"]) == ["m24", "m23", "m22"]
    bounded = (await server.api("GET", f"rooms/{room}/messages", alice,
                                params={"from": middle["end"], "to": tl["prev_batch"], "dir": "b",
                                        "limit": 50})).json()
    assert bodies(bounded["chunk"]) == ["m21", "m20"]
    await expect_error(await server.api("GET", f"rooms/{room}/messages", alice, params={"dir": "x"}), 400,
                       "M_INVALID_PARAM")
    await expect_error(await server.api("GET", f"rooms/{room}/messages", alice, params={"from": "zzz"}), 400,
                       "M_INVALID_PARAM")
    await expect_error(await server.api("GET", f"rooms/{room}/messages", alice, params={"limit": "x"}), 400,
                       "M_INVALID_PARAM")
    await expect_error(await server.api("GET", f"rooms/{room}/messages", alice, params={"filter": "{"}), 400,
                       "M_NOT_JSON")
    lazy = (await server.api("GET", f"rooms/{room}/messages", alice,
                             params={"limit": 2, "filter": json.dumps({"lazy_load_members": True})})).json()
    assert [e["state_key"] for e in lazy["state"]] == [alice.user_id]


async def test_event_and_context(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice)
    ids = [await send_text(server, alice, room, f"c{i}") for i in range(9)]
    event = (await server.api("GET", f"rooms/{room}/event/{ids[4]}", alice)).json()
    assert event["content"]["body"] == "c4" and event["event_id"] == ids[4] and event["room_id"] == room
    assert event["unsigned"]["age"] >= 0
    # Spec (GET /rooms/{roomId}/event/{eventId}): 404 when the user may not see the event.
    await expect_error(await server.api("GET", f"rooms/{room}/event/{ids[4]}", bob), 404, "M_NOT_FOUND")
    await expect_error(await server.api("GET", f"rooms/{room}/event/$unknown", alice), 404, "M_NOT_FOUND")
    context = (await server.api("GET", f"rooms/{room}/context/{ids[4]}", alice, params={"limit": 4})).json()
    assert context["event"]["event_id"] == ids[4]
    assert [e["event_id"] for e in context["events_before"]] == [ids[3], ids[2]]
    assert [e["event_id"] for e in context["events_after"]] == [ids[5], ids[6]]
    assert any(e["type"] == "m.room.create" for e in context["state"])
    after = (await server.api("GET", f"rooms/{room}/messages", alice,
                              params={"from": context["end"], "dir": "f", "limit": 10})).json()
    assert [e["event_id"] for e in after["chunk"]] == ids[7:]
    before = (await server.api("GET", f"rooms/{room}/messages", alice,
                               params={"from": context["start"], "dir": "b", "limit": 2})).json()
    assert [e["event_id"] for e in before["chunk"]] == [ids[1], ids[0]]


async def test_message_rate_limit(make_config) -> None:  # type: ignore[no-untyped-def]
    from tests.support.server import serve_homeserver

    async with serve_homeserver(make_config(rate_limits={"messages_per_minute": 3})) as server:
        alice = await server.register()
        room = await create_room(server, alice)
        for i in range(3):
            await send_text(server, alice, room, f"r{i}")
        response = await server.api("PUT", f"rooms/{room}/send/m.room.message/over", alice, json={"body": "x"})
        await expect_error(response, 429, "M_LIMIT_EXCEEDED")
        assert response.json()["retry_after_ms"] > 0

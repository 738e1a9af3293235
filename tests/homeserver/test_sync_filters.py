"""/sync honours the room.state filter (types, not_types, senders, wildcards) and, for
left rooms, the timeline filter; left rooms carry the state before their timeline."""

from __future__ import annotations

import json
from urllib.parse import quote

from homeserver.services.sync_filter import type_matches
from tests.homeserver.room_helpers import create_room, send_text, sync
from tests.support.server import RunningServer


def test_type_wildcards() -> None:
    assert type_matches("m.room.*", "m.room.name")
    assert type_matches("*", "anything")
    assert type_matches("m.*.name", "m.room.name")
    assert not type_matches("m.room.*", "m.roomx")
    assert not type_matches("m.room.name", "m.room.names")
    assert not type_matches("a*a", "a")


async def test_state_filter_types_and_senders(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice, name="Filtered")
    await server.api("PUT", f"rooms/{quote(room)}/state/a.madeup.test.state", alice, json={"my_key": 1})
    for _ in range(12):  # push the state out of the timeline
        await send_text(server, alice, room, "filler")

    def state_types(body: dict[str, object]) -> set[str]:
        events = body["rooms"]["join"][room]["state"]["events"]  # type: ignore[index]
        return {e["type"] for e in events}

    only = {"room": {"state": {"types": ["a.madeup.test.state"]}, "timeline": {"limit": 2}}}
    body = await sync(server, alice, filter=json.dumps(only))
    assert state_types(body) == {"a.madeup.test.state"}

    wildcard = {"room": {"state": {"types": ["m.room.*"], "not_types": ["m.room.member"]}, "timeline": {"limit": 2}}}
    types = state_types(await sync(server, alice, filter=json.dumps(wildcard)))
    assert "m.room.name" in types and "m.room.member" not in types and "a.madeup.test.state" not in types

    nobody = {"room": {"state": {"senders": ["@nobody:example.org"]}, "timeline": {"limit": 2}}}
    assert state_types(await sync(server, alice, filter=json.dumps(nobody))) == set()


async def test_left_rooms_apply_the_timeline_filter_and_carry_state(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, preset="public_chat")
    since = (await sync(server, bob))["next_batch"]
    await server.api("POST", f"join/{quote(room)}", bob, json={})
    await send_text(server, alice, room, "hello bob")
    await server.api("PUT", f"rooms/{quote(room)}/state/a.madeup.test.state", alice, json={"x": 1})
    await server.api("POST", f"rooms/{quote(room)}/leave", bob, json={})
    flt = {"room": {"include_leave": True, "timeline": {"types": ["m.room.message"]}}}
    body = await sync(server, bob, since=since, filter=json.dumps(flt))
    left = body["rooms"]["leave"][room]
    assert {e["type"] for e in left["timeline"]["events"]} == {"m.room.message"}
    # Joined and left in this one batch: the state before the timeline comes along.
    assert {"m.room.create", "m.room.join_rules"} <= {e["type"] for e in left["state"]["events"]}


async def test_federation_event_format(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice, name="Federation format")
    event_id = await send_text(server, alice, room, "as a pdu")
    flt = {"event_format": "federation", "room": {"timeline": {"limit": 1}}}
    body = await sync(server, alice, filter=json.dumps(flt))
    [event] = body["rooms"]["join"][room]["timeline"]["events"]
    assert event["event_id"] == event_id and event["content"]["body"] == "as a pdu"
    assert {"prev_events", "auth_events", "depth", "hashes", "signatures", "room_id", "sender",
            "origin_server_ts", "type", "unsigned"} <= set(event)
    assert "age" in event["unsigned"]
    # State events come as PDUs too; the client format has none of the PDU fields.
    assert all("auth_events" in e for e in body["rooms"]["join"][room]["state"]["events"])
    client = await sync(server, alice, filter=json.dumps({"room": {"timeline": {"limit": 1}}}))
    assert "prev_events" not in client["rooms"]["join"][room]["timeline"]["events"][0]
    bad = await server.api("GET", "sync", alice, params={"filter": json.dumps({"event_format": "xml"})})
    assert bad.status_code == 400 and bad.json()["errcode"] == "M_BAD_JSON", bad.text
    stored = await server.api("POST", f"user/{alice.user_id}/filter", alice, json={"event_format": "xml"})
    assert stored.status_code == 400, stored.text


async def test_join_and_leave_in_one_batch_with_an_empty_timeline_filter_keeps_the_state(
        server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, invite=[bob.user_id])
    await server.api("PUT", f"rooms/{quote(room)}/state/a.madeup.test.state", alice, json={"my_key": 1})
    flt = json.dumps({"room": {"timeline": {"types": []}, "state": {"types": ["a.madeup.test.state"]},
                               "include_leave": True}})
    since = (await sync(server, bob, filter=flt))["next_batch"]
    assert (await server.api("POST", f"rooms/{quote(room)}/join", bob, json={})).status_code == 200
    assert (await server.api("POST", f"rooms/{quote(room)}/leave", bob, json={})).status_code == 200
    left = (await sync(server, bob, since=since, filter=flt))["rooms"]["leave"][room]
    assert left["timeline"]["events"] == []
    assert [(e["type"], e["content"]) for e in left["state"]["events"]] == [("a.madeup.test.state", {"my_key": 1})]

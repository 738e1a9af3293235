"""Ignoring users (m.ignored_user_list): their events and invitations stay out of /sync."""

from __future__ import annotations

from urllib.parse import quote

from tests.homeserver.room_helpers import bodies, create_room, send_text, sync, timeline
from tests.support.server import RunningServer


async def test_ignored_users_events_and_invites_are_hidden(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    room = await create_room(server, alice, preset="public_chat")
    await server.api("POST", f"join/{quote(room)}", bob, json={})
    ignore = await server.api("PUT", f"user/{quote(alice.user_id)}/account_data/m.ignored_user_list", alice,
                              json={"ignored_users": {bob.user_id: {}, carol.user_id: {}}})
    assert ignore.status_code == 200
    since = (await sync(server, alice))["next_batch"]
    await send_text(server, bob, room, "from bob")
    await send_text(server, alice, room, "from alice")
    carols = await create_room(server, carol)
    await server.api("POST", f"rooms/{quote(carols)}/invite", carol, json={"user_id": alice.user_id})

    body = await sync(server, alice, since=since)
    assert bodies(timeline(body, room)) == ["from alice"]
    assert carols not in body["rooms"]["invite"]
    assert carols not in (await sync(server, alice))["rooms"]["invite"]  # nor in a full sync
    # A room whose only news is an ignored user's message is not in an incremental sync at all.
    await send_text(server, bob, room, "only bob")
    quiet = await sync(server, alice, since=body["next_batch"])
    assert room not in quiet["rooms"]["join"], quiet["rooms"]["join"].get(room)
    # Un-ignoring shows new events and the invitation again.
    await server.api("PUT", f"user/{quote(alice.user_id)}/account_data/m.ignored_user_list", alice,
                     json={"ignored_users": {}})
    since = (await sync(server, alice))["next_batch"]
    await send_text(server, bob, room, "bob again")
    assert bodies(timeline(await sync(server, alice, since=since), room)) == ["bob again"]
    assert carols in (await sync(server, alice))["rooms"]["invite"]


async def test_ignored_users_are_left_out_of_messages_and_context_but_not_their_state(
        server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, preset="public_chat")
    await server.api("POST", f"join/{quote(room)}", bob, json={})
    levels = (await server.api("GET", f"rooms/{quote(room)}/state/m.room.power_levels", alice)).json()
    levels["users"][bob.user_id] = levels.get("state_default", 50)  # Bob may send state events
    assert (await server.api("PUT", f"rooms/{quote(room)}/state/m.room.power_levels", alice,
                             json=levels)).status_code == 200
    await server.api("PUT", f"user/{quote(alice.user_id)}/account_data/m.ignored_user_list", alice,
                     json={"ignored_users": {bob.user_id: {}}})
    since = (await sync(server, alice))["next_batch"]
    first = await send_text(server, alice, room, "alice 1")
    await send_text(server, bob, room, "bob 1")
    name = await server.api("PUT", f"rooms/{quote(room)}/state/org.example.bob", bob, json={"x": 1})
    assert name.status_code == 200, name.text
    await send_text(server, bob, room, "bob 2")
    last = await send_text(server, alice, room, "alice 2")

    page = await server.api("GET", f"rooms/{quote(room)}/messages", alice, params={"dir": "b", "limit": 3})
    assert page.status_code == 200, page.text
    chunk = page.json()["chunk"]
    # Three events were read (alice 2, bob 2, bob's state event); only bob's message is left out,
    # and paging on from ``end`` continues past the events read, not past the ones shown.
    assert [e["event_id"] for e in chunk][0] == last
    assert {e["type"] for e in chunk} == {"m.room.message", "org.example.bob"}
    assert all(e["sender"] != bob.user_id or "state_key" in e for e in chunk)
    rest = await server.api("GET", f"rooms/{quote(room)}/messages", alice,
                            params={"dir": "b", "limit": 50, "from": page.json()["end"]})
    assert "bob 1" not in bodies(rest.json()["chunk"]) and "alice 1" in bodies(rest.json()["chunk"])
    assert first in [e["event_id"] for e in rest.json()["chunk"]]

    context = await server.api("GET", f"rooms/{quote(room)}/context/{quote(first)}", alice, params={"limit": 20})
    assert context.status_code == 200, context.text
    around = context.json()["events_before"] + context.json()["events_after"]
    assert "bob 1" not in bodies(around) and "bob 2" not in bodies(around) and "alice 2" in bodies(around)
    assert any(e["type"] == "org.example.bob" for e in around)
    # /sync: the same rule (Bob's state event stays, his messages do not).
    synced = timeline(await sync(server, alice, since=since), room)
    assert bodies(synced) == ["alice 1", "alice 2"] and any(e["type"] == "org.example.bob" for e in synced)
    # Bob sees everything: only the ignoring user is affected.
    bobs = await server.api("GET", f"rooms/{quote(room)}/messages", bob, params={"dir": "b", "limit": 50})
    assert {"bob 1", "bob 2", "alice 1", "alice 2"} <= set(bodies(bobs.json()["chunk"]))

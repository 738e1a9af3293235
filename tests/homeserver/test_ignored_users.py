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
    # Un-ignoring shows new events and the invitation again.
    await server.api("PUT", f"user/{quote(alice.user_id)}/account_data/m.ignored_user_list", alice,
                     json={"ignored_users": {}})
    since = (await sync(server, alice))["next_batch"]
    await send_text(server, bob, room, "bob again")
    assert bodies(timeline(await sync(server, alice, since=since), room)) == ["bob again"]
    assert carols in (await sync(server, alice))["rooms"]["invite"]

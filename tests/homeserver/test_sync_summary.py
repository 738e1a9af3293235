"""The room summary in /sync: counts always; ``m.heroes`` only where the spec requires it
(the room's m.room.name and m.room.canonical_alias are unset or empty)."""

from __future__ import annotations

from urllib.parse import quote

from tests.homeserver.room_helpers import create_room, sync
from tests.support.server import RunningServer


async def test_heroes_only_for_rooms_without_a_name_or_alias(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    unnamed = await create_room(server, alice, preset="public_chat")
    named = await create_room(server, alice, preset="public_chat", name="Named")
    for room in (unnamed, named):
        assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 200
    body = await sync(server, alice)
    assert body["rooms"]["join"][unnamed]["summary"] == {
        "m.heroes": [bob.user_id], "m.joined_member_count": 2, "m.invited_member_count": 0}
    assert body["rooms"]["join"][named]["summary"] == {"m.joined_member_count": 2, "m.invited_member_count": 0}
    # An emptied name brings the heroes back.
    emptied = await server.api("PUT", f"rooms/{quote(named)}/state/m.room.name", alice, json={"name": ""})
    assert emptied.status_code == 200, emptied.text
    later = await sync(server, alice, since=body["next_batch"])
    changed = await server.api("POST", f"rooms/{quote(named)}/leave", bob, json={})
    assert changed.status_code == 200
    after_leave = await sync(server, alice, since=later["next_batch"])
    assert after_leave["rooms"]["join"][named]["summary"] == {
        "m.heroes": [bob.user_id], "m.joined_member_count": 1, "m.invited_member_count": 0}  # left members when no one else

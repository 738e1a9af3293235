"""Rooms over real HTTP: creation, state, power levels, membership, DM delete-for-me, group destroy."""

from __future__ import annotations

import json

from tests.homeserver.room_helpers import create_room, expect_error, send_text, sync, timeline
from tests.support.server import RunningServer


async def test_create_room_state_and_lists(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(
        server, alice, name="Project", topic="t", invite=[bob.user_id],
        initial_state=[{"type": "m.room.encryption", "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        power_level_content_override={"events_default": 0},
    )
    state = (await server.api("GET", f"rooms/{room}/state", alice)).json()
    types = {(e["type"], e["state_key"]) for e in state}
    assert {("m.room.create", ""), ("m.room.power_levels", ""), ("m.room.join_rules", ""),
            ("m.room.history_visibility", ""), ("m.room.name", ""), ("m.room.encryption", ""),
            ("m.room.member", alice.user_id), ("m.room.member", bob.user_id)} <= types
    create = next(e for e in state if e["type"] == "m.room.create")
    assert create["content"]["room_version"] == "11" and create["sender"] == alice.user_id
    name = await server.api("GET", f"rooms/{room}/state/m.room.name", alice)
    assert name.json() == {"name": "Project"}
    assert (await server.api("GET", f"rooms/{room}/state/m.room.name/", alice)).json() == {"name": "Project"}
    # ?format=event gives the whole event (spec: content is the default).
    whole = (await server.api("GET", f"rooms/{room}/state/m.room.member/{alice.user_id}", alice,
                              params={"format": "event"})).json()
    assert whole["sender"] == alice.user_id and whole["room_id"] == room and whole["type"] == "m.room.member"
    assert whole["content"]["membership"] == "join" and whole["event_id"].startswith("$")
    await expect_error(await server.api("GET", f"rooms/{room}/state/m.room.name", alice, params={"format": "x"}),
                       400, "M_INVALID_PARAM")
    power = (await server.api("GET", f"rooms/{room}/state/m.room.power_levels", alice)).json()
    assert power["users"] == {alice.user_id: 100}
    await expect_error(await server.api("GET", f"rooms/{room}/state/m.room.avatar", alice), 404, "M_NOT_FOUND")
    # Groups invite: bob is invited, not joined.
    joined = (await server.api("GET", f"rooms/{room}/joined_members", alice)).json()["joined"]
    assert set(joined) == {alice.user_id}
    members = (await server.api("GET", f"rooms/{room}/members", alice)).json()["chunk"]
    assert {m["state_key"]: m["content"]["membership"] for m in members} == {
        alice.user_id: "join", bob.user_id: "invite"}
    invited = (await server.api("GET", f"rooms/{room}/members", alice, params={"membership": "invite"})).json()
    assert [m["state_key"] for m in invited["chunk"]] == [bob.user_id]
    assert room in (await server.api("GET", "joined_rooms", alice)).json()["joined_rooms"]
    assert room not in (await server.api("GET", "joined_rooms", bob)).json()["joined_rooms"]
    # Not a member yet: no state, no members.
    await expect_error(await server.api("GET", f"rooms/{room}/state", bob), 403, "M_FORBIDDEN")
    await expect_error(await server.api("GET", f"rooms/{room}/joined_members", bob), 403, "M_FORBIDDEN")
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200
    assert set((await server.api("GET", f"rooms/{room}/joined_members", bob)).json()["joined"]) == {
        alice.user_id, bob.user_id}


async def test_create_room_validation(server: RunningServer) -> None:
    alice = await server.register()
    await expect_error(await server.api("POST", "createRoom", alice, json={"name": "x" * 101}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("POST", "createRoom", alice, json={"room_version": "13"}), 400,
                       "M_UNSUPPORTED_ROOM_VERSION")
    # Room versions are strings: a number is bad JSON, not an unknown version.
    await expect_error(await server.api("POST", "createRoom", alice, json={"room_version": 11}), 400, "M_BAD_JSON")
    await expect_error(await server.api("POST", "createRoom", alice, json={"preset": "nope"}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("POST", "createRoom", alice, json={"invite": ["not-a-user"]}), 400,
                       "M_INVALID_PARAM")
    await expect_error(await server.api("POST", "createRoom", alice,
                                        json={"invite": [f"@nobody_xyz:{server.config.server_name}"]}),
                       404, "M_NOT_FOUND")
    await expect_error(await server.api("POST", "createRoom", alice, json={"is_direct": "yes"}), 400, "M_BAD_JSON")
    await expect_error(await server.api("POST", "createRoom", alice,
                                        json={"initial_state": [{"type": "m.room.member", "content": {}}]}),
                       400, "M_INVALID_PARAM")
    await expect_error(await server.api("POST", "createRoom", alice,
                                        json={"power_level_content_override": {"kick": "50"}}), 400, "M_BAD_JSON")
    await expect_error(await server.api("POST", "createRoom", None, json={}), 401, "M_MISSING_TOKEN")
    # 100 characters is fine.
    await create_room(server, alice, name="n" * 100)


async def test_power_level_refusals(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    room = await create_room(server, alice, name="G", invite=[bob.user_id, carol.user_id])
    for user in (bob, carol):
        assert (await server.api("POST", f"join/{room}", user, json={})).status_code == 200
    # Only the creator renames, changes the avatar, changes power levels, kicks.
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.room.name", bob, json={"name": "B"}),
                       403, "M_FORBIDDEN")
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.room.avatar", bob,
                                        json={"url": "mxc://x/y"}), 403, "M_FORBIDDEN")
    power = (await server.api("GET", f"rooms/{room}/state/m.room.power_levels", bob)).json()
    power["users"][bob.user_id] = 100
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.room.power_levels", bob, json=power),
                       403, "M_FORBIDDEN")
    await expect_error(await server.api("POST", f"rooms/{room}/kick", bob, json={"user_id": carol.user_id}),
                       403, "M_FORBIDDEN")
    # Names are limited to 100 characters.
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.room.name", alice, json={"name": "n" * 101}),
                       400, "M_INVALID_PARAM")
    ok = await server.api("PUT", f"rooms/{room}/state/m.room.name", alice, json={"name": "Renamed"})
    assert ok.status_code == 200 and ok.json()["event_id"].startswith("$")
    # The creator may not raise anyone above 100.
    power["users"][bob.user_id] = 101
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.room.power_levels", alice, json=power),
                       403, "M_FORBIDDEN")
    power["users"][bob.user_id] = 50
    assert (await server.api("PUT", f"rooms/{room}/state/m.room.power_levels", alice, json=power)).status_code == 200
    # State keyed by another user's id is refused; membership goes through its endpoints.
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.custom/{carol.user_id}", bob, json={}),
                       403, "M_FORBIDDEN")
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.room.member/{carol.user_id}", alice,
                                        json={"membership": "leave"}), 400, "M_INVALID_PARAM")
    # Outsiders cannot send or join an invite-only room.
    outsider = await server.register()
    await expect_error(await server.api("PUT", f"rooms/{room}/send/m.room.message/x1", outsider,
                                        json={"body": "x"}), 403, "M_FORBIDDEN")
    await expect_error(await server.api("POST", f"rooms/{room}/join", outsider, json={}), 403, "M_FORBIDDEN")
    # Kick by the creator works and the kicked user sees the room in rooms.leave.
    before = await sync(server, carol)
    assert (await server.api("POST", f"rooms/{room}/kick", alice,
                             json={"user_id": carol.user_id, "reason": "bye"})).status_code == 200
    after = await sync(server, carol, since=before["next_batch"])
    leave = after["rooms"]["leave"][room]["timeline"]["events"]
    assert leave[-1]["content"] == {"membership": "leave", "reason": "bye"}
    assert leave[-1]["sender"] == alice.user_id
    await expect_error(await server.api("PUT", f"rooms/{room}/send/m.room.message/x2", carol, json={"body": "x"}),
                       403, "M_FORBIDDEN")


async def test_bad_ids_and_unknown_rooms(server: RunningServer) -> None:
    alice = await server.register()
    await expect_error(await server.api("POST", "rooms/not-a-room/join", alice, json={}), 400, "M_INVALID_PARAM")
    unknown = f"!nope:{server.config.server_name}"
    await expect_error(await server.api("POST", f"rooms/{unknown}/join", alice, json={}), 404, "M_NOT_FOUND")
    await expect_error(await server.api("POST", f"join/%23alias:{server.config.server_name}", alice, json={}),
                       404, "M_NOT_FOUND")  # unknown alias (one of another server: tests/homeserver/federation)
    await expect_error(await server.api("GET", f"rooms/{unknown}/messages", alice), 403, "M_FORBIDDEN")
    room = await create_room(server, alice)
    await expect_error(await server.api("POST", f"rooms/{room}/invite", alice, json={}), 400, "M_MISSING_PARAM")
    await expect_error(await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": "bob"}), 400,
                       "M_INVALID_PARAM")
    # A user of a server that cannot be reached (federation): a clear 502, the invite revoked.
    await expect_error(await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": "@bob:elsewhere.org"}),
                       502, "M_UNKNOWN")
    await expect_error(await server.api("POST", f"rooms/{room}/kick", alice, json={"user_id": 5}), 400,
                       "M_INVALID_PARAM")
    await expect_error(await server.api("POST", f"rooms/{room}/forget", alice, json={}), 400, "M_UNKNOWN")


async def test_invite_decline_rejoin_and_forget(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, name="G")
    first = await sync(server, bob)
    assert (await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": bob.user_id})).status_code == 200
    invited = await sync(server, bob, since=first["next_batch"])
    state = invited["rooms"]["invite"][room]["invite_state"]["events"]
    assert any(e["type"] == "m.room.name" and e["content"]["name"] == "G" for e in state)
    assert any(e["type"] == "m.room.member" and e["state_key"] == bob.user_id
               and e["content"]["membership"] == "invite" for e in state)
    # Declining is a leave.
    assert (await server.api("POST", f"rooms/{room}/leave", bob, json={})).status_code == 200
    declined = await sync(server, bob, since=invited["next_batch"])
    assert room in declined["rooms"]["leave"]
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 403
    # Re-invite, accept, leave, forget.
    await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": bob.user_id})
    assert (await server.api("POST", f"join/{room}", bob, json={})).json() == {"room_id": room}
    await expect_error(await server.api("POST", f"rooms/{room}/forget", bob, json={}), 400, "M_UNKNOWN")
    assert (await server.api("POST", f"rooms/{room}/leave", bob, json={})).json() == {}
    assert (await server.api("POST", f"rooms/{room}/forget", bob, json={})).json() == {}
    # A forgotten room is gone from bob's initial sync even with include_leave.
    full = await sync(server, bob, filter=json.dumps({"room": {"include_leave": True}}))
    assert room not in full["rooms"]["leave"] and room not in full["rooms"]["join"]


async def test_placeholder_accounts_can_be_invited(server: RunningServer) -> None:
    alice = await server.register()
    placeholder = f"@ph_{alice.user_id[1:8]}:{server.config.server_name}"
    with server.hs.database.activated():
        await server.hs.services.accounts.users.create(placeholder, placeholder[1:].split(":")[0], None, None, None,
                                                       server.hs.services.clock.now_ms(), is_placeholder=True)
    room = await create_room(server, alice, invite=[placeholder])
    members = (await server.api("GET", f"rooms/{room}/members", alice)).json()["chunk"]
    assert any(m["state_key"] == placeholder and m["content"]["membership"] == "invite" for m in members)


async def test_creator_handover_to_longest_standing_member(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    room = await create_room(server, alice, name="G", invite=[bob.user_id, carol.user_id])
    # Carol joins first: she is the longest-standing member after alice.
    await server.api("POST", f"rooms/{room}/join", carol, json={})
    await server.api("POST", f"rooms/{room}/join", bob, json={})
    assert (await server.api("POST", f"rooms/{room}/leave", alice, json={})).status_code == 200
    power = (await server.api("GET", f"rooms/{room}/state/m.room.power_levels", bob)).json()
    assert power["users"].get(carol.user_id) == 100
    assert alice.user_id not in power["users"] and bob.user_id not in power["users"]
    # The new holder can rename and kick; bob still cannot.
    assert (await server.api("PUT", f"rooms/{room}/state/m.room.name", carol, json={"name": "C"})).status_code == 200
    await expect_error(await server.api("PUT", f"rooms/{room}/state/m.room.name", bob, json={"name": "B"}),
                       403, "M_FORBIDDEN")
    assert (await server.api("POST", f"rooms/{room}/kick", carol, json={"user_id": bob.user_id})).status_code == 200


async def test_dm_delete_for_me_then_purge(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    purged: list[str] = []
    redacted: list[str] = []

    async def on_purged(room_id: str) -> None:
        purged.append(room_id)

    async def on_redacted(room_id: str, event_id: str, content: dict) -> None:
        redacted.append(event_id)

    server.hs.services.rooms.on_room_purged(on_purged)
    server.hs.services.rooms.on_event_redacted(on_redacted)
    dm = await create_room(server, alice, is_direct=True, preset="trusted_private_chat", invite=[bob.user_id])
    # Direct chats add both users.
    joined = (await server.api("GET", f"rooms/{dm}/joined_members", alice)).json()["joined"]
    assert set(joined) == {alice.user_id, bob.user_id}
    member = (await server.api("GET", f"rooms/{dm}/state/m.room.member/{bob.user_id}", alice)).json()
    assert member["membership"] == "join"
    first = await send_text(server, alice, dm, "hello bob")
    # Alice deletes the chat for herself: bob keeps it and can still write.
    assert (await server.api("POST", f"rooms/{dm}/leave", alice, json={})).status_code == 200
    await send_text(server, bob, dm, "still here")
    assert dm in (await server.api("GET", "joined_rooms", bob)).json()["joined_rooms"]
    assert dm not in (await server.api("GET", "joined_rooms", alice)).json()["joined_rooms"]
    history = (await server.api("GET", f"rooms/{dm}/messages", bob, params={"dir": "b", "limit": 50})).json()
    assert first in [e["event_id"] for e in history["chunk"]]
    # Alice can read up to her leave but not after.
    own = (await server.api("GET", f"rooms/{dm}/messages", alice, params={"dir": "b", "limit": 50})).json()
    assert "still here" not in [e["content"].get("body") for e in own["chunk"]]
    assert purged == []
    # Bob leaves too: the room is purged.
    assert (await server.api("POST", f"rooms/{dm}/leave", bob, json={})).status_code == 200
    assert purged == [dm]
    remaining = await server.hs.database.fetch("SELECT type, membership FROM events WHERE room_id = ?", (dm,))
    assert all(r["type"] == "m.room.member" and r["membership"] == "leave" for r in remaining)
    assert len(remaining) == 2
    await expect_error(await server.api("POST", f"rooms/{dm}/join", bob, json={}), 404, "M_NOT_FOUND")
    for user in (alice, bob):
        assert (await server.api("POST", f"rooms/{dm}/forget", user, json={})).status_code == 200
    assert await server.hs.database.fetch("SELECT room_id FROM rooms WHERE room_id = ?", (dm,)) == []
    assert redacted == []


async def test_group_destroy(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    purged: list[str] = []

    async def on_purged(room_id: str) -> None:
        purged.append(room_id)

    server.hs.services.rooms.on_room_purged(on_purged)
    room = await create_room(server, alice, name="G", invite=[bob.user_id, carol.user_id])
    await server.api("POST", f"rooms/{room}/join", bob, json={})
    await send_text(server, bob, room, "hi all")
    bob_sync = await sync(server, bob)
    destroy = f"/_matrix/client/unstable/im.parley/rooms/{room}/destroy"
    await expect_error(await server.api("POST", destroy, bob, json={}), 403, "M_FORBIDDEN")
    assert (await server.api("POST", destroy, alice, json={})).json() == {}
    assert purged == [room]
    for user in (alice, bob):
        assert room not in (await server.api("GET", "joined_rooms", user)).json()["joined_rooms"]
    after = await sync(server, bob, since=bob_sync["next_batch"])
    assert after["rooms"]["leave"][room]["timeline"]["events"][-1]["content"]["membership"] == "leave"
    # Carol's invitation is gone as well.
    carol_sync = await sync(server, carol)
    assert room not in carol_sync["rooms"]["invite"]
    remaining = await server.hs.database.fetch("SELECT type FROM events WHERE room_id = ?", (room,))
    assert {r["type"] for r in remaining} <= {"m.room.member"}
    dm = await create_room(server, alice, is_direct=True, invite=[bob.user_id])
    await expect_error(await server.api("POST", f"/_matrix/client/unstable/im.parley/rooms/{dm}/destroy", alice,
                                        json={}), 403, "M_FORBIDDEN")
    assert timeline(after, room) == []


async def test_ban_and_unban(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, preset="public_chat")
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200
    assert (await server.api("POST", f"rooms/{room}/ban", alice, json={"user_id": bob.user_id})).status_code == 200
    await expect_error(await server.api("POST", f"rooms/{room}/join", bob, json={}), 403, "M_FORBIDDEN")
    assert (await server.api("POST", f"rooms/{room}/unban", alice, json={"user_id": bob.user_id})).status_code == 200
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200


async def test_profile_propagation_hook(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    with server.hs.database.activated():
        await server.hs.services.rooms.update_profile_in_rooms(alice.user_id, "Alice A", "mxc://x/avatar")
    member = (await server.api("GET", f"rooms/{room}/state/m.room.member/{alice.user_id}", alice)).json()
    assert member == {"membership": "join", "displayname": "Alice A", "avatar_url": "mxc://x/avatar"}

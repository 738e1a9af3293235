"""Every room version 1-12 over real HTTP: create, message, state, membership, redaction,
/context, knocking, restricted joins and upgrades."""

from __future__ import annotations

import asyncio
import string
from typing import Any
from urllib.parse import quote

import pytest

from homeserver.services.clock import ManualClock
from homeserver.services.events import redact_event
from homeserver.services.room_versions import ROOM_VERSIONS
from tests.homeserver.room_helpers import create_room, expect_error, send_text
from tests.support.server import Account, RunningServer, serve_homeserver

VERSIONS = [str(v) for v in range(1, 13)]
URLSAFE = set(string.ascii_letters + string.digits + "-_")


def q(event_id: str) -> str:
    return quote(event_id, safe="")


async def state_of(server: RunningServer, account: Account, room: str) -> dict[tuple[str, str], Any]:
    response = await server.api("GET", f"rooms/{room}/state", account)
    assert response.status_code == 200, response.text
    return {(e["type"], e["state_key"]): e for e in response.json()}


def check_event_id(version: str, event_id: str, server_name: str) -> None:
    scheme = ROOM_VERSIONS[version].event_id_scheme
    if scheme == "server":
        assert event_id.endswith(":" + server_name)
    elif scheme == "urlsafe":
        assert set(event_id[1:]) <= URLSAFE and len(event_id) == 44
    else:
        assert len(event_id) == 44 and ":" not in event_id


async def test_capabilities_list_every_version(server: RunningServer) -> None:
    alice = await server.register()
    body = (await server.api("GET", "capabilities", alice)).json()
    versions = body["capabilities"]["m.room_versions"]
    assert versions["default"] == "11"
    assert versions["available"] == {v: "stable" for v in VERSIONS}


@pytest.mark.parametrize("version", VERSIONS)
async def test_room_flows_in_every_version(server: RunningServer, version: str) -> None:
    rules = ROOM_VERSIONS[version]
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, room_version=version, name="Versions", invite=[bob.user_id])
    if rules.room_id_from_create:
        assert ":" not in room and len(room) == 44
    else:
        assert room.endswith(":" + server.config.server_name)
    state = await state_of(server, alice, room)
    create = state[("m.room.create", "")]
    assert create["content"]["room_version"] == version
    assert ("creator" in create["content"]) == (not rules.creator_is_sender)
    power = state[("m.room.power_levels", "")]["content"]
    assert (alice.user_id in power["users"]) == (not rules.infinite_creators)
    if rules.infinite_creators:  # the spec's createRoom: above state_default from v12 on
        assert power["events"]["m.room.tombstone"] > power["state_default"]

    # Membership and messages.
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200
    message = await send_text(server, bob, room, f"hello v{version}")
    check_event_id(version, message, server.config.server_name)
    chunk = (await server.api("GET", f"rooms/{room}/messages", alice, params={"dir": "b", "limit": 5})).json()
    assert chunk["chunk"][0]["event_id"] == message and chunk["chunk"][0]["room_id"] == room

    # State: a topic, then /context of the message shows the state at the message, not the new topic.
    put = await server.api("PUT", f"rooms/{room}/state/m.room.topic", alice, json={"topic": "later"})
    assert put.status_code == 200, put.text
    context = (await server.api("GET", f"rooms/{room}/context/{q(message)}", alice, params={"limit": 0})).json()
    assert context["event"]["event_id"] == message
    assert ("m.room.topic", "") not in {(e["type"], e["state_key"]) for e in context["state"]}
    assert (await state_of(server, alice, room))[("m.room.topic", "")]["content"] == {"topic": "later"}

    # Redaction: the creator removes bob's message; the version's algorithm keeps no content.
    redact = await server.api("PUT", f"rooms/{room}/redact/{q(message)}/r1", alice, json={"reason": "x"})
    assert redact.status_code == 200, redact.text
    event = (await server.api("GET", f"rooms/{room}/event/{q(message)}", bob)).json()
    assert event["content"] == {} and event["unsigned"]["redacted_because"]["event_id"] == redact.json()["event_id"]
    assert event["unsigned"]["redacted_because"]["redacts"] == message

    # Kick: bob cannot come back to an invite-only room; an invite lets him.
    assert (await server.api("POST", f"rooms/{room}/kick", alice, json={"user_id": bob.user_id})).status_code == 200
    await expect_error(await server.api("POST", f"rooms/{room}/join", bob, json={}), 403, "M_FORBIDDEN")
    assert (await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": bob.user_id})).status_code == 200
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200

    # Upgrade to the next version (12 upgrades to 11): tombstone, predecessor, power levels, invites.
    target = str(int(version) + 1) if version != "12" else "11"
    upgraded = await server.api("POST", f"rooms/{room}/upgrade", alice, json={"new_version": target})
    assert upgraded.status_code == 200, upgraded.text
    new_room = upgraded.json()["replacement_room"]
    old_state = await state_of(server, alice, room)
    assert old_state[("m.room.tombstone", "")]["content"]["replacement_room"] == new_room
    assert old_state[("m.room.power_levels", "")]["content"]["events_default"] == 50
    await expect_error(await server.api("PUT", f"rooms/{room}/send/m.room.message/late", bob,
                                        json={"msgtype": "m.text", "body": "late"}), 403, "M_FORBIDDEN")
    new_state = await state_of(server, alice, new_room)
    new_create = new_state[("m.room.create", "")]["content"]
    assert new_create["room_version"] == target and new_create["predecessor"]["room_id"] == room
    assert new_state[("m.room.name", "")]["content"] == {"name": "Versions"}
    assert new_state[("m.room.topic", "")]["content"] == {"topic": "later"}
    assert new_state[("m.room.member", bob.user_id)]["content"]["membership"] == "invite"
    new_levels = new_state[("m.room.power_levels", "")]["content"]
    new_power = new_levels["users"]
    assert (alice.user_id in new_power) == (not ROOM_VERSIONS[target].infinite_creators)
    if alice.user_id in new_power:  # a v12 creator keeps every right, the next upgrade included
        assert new_power[alice.user_id] >= new_levels["events"]["m.room.tombstone"]
    assert (await server.api("POST", f"rooms/{new_room}/join", bob, json={})).status_code == 200
    await send_text(server, bob, new_room, "in the new room")


@pytest.mark.parametrize("version", VERSIONS)
async def test_knocking(server: RunningServer, version: str) -> None:
    alice, carol = await server.register(), await server.register()
    if not ROOM_VERSIONS[version].knocking:
        room = await create_room(server, alice, room_version=version)
        bad = await server.api("PUT", f"rooms/{room}/state/m.room.join_rules", alice, json={"join_rule": "knock"})
        await expect_error(bad, 400, "M_INVALID_PARAM")
        await expect_error(await server.api("POST", f"knock/{room}", carol, json={}), 403, "M_FORBIDDEN")
        return
    room = await create_room(server, alice, room_version=version,
                             initial_state=[{"type": "m.room.join_rules", "content": {"join_rule": "knock"}}])
    await expect_error(await server.api("POST", f"rooms/{room}/join", carol, json={}), 403, "M_FORBIDDEN")
    knocked = await server.api("POST", f"knock/{room}", carol, json={"reason": "let me in"})
    assert knocked.status_code == 200 and knocked.json() == {"room_id": room}
    members = (await server.api("GET", f"rooms/{room}/members", alice)).json()["chunk"]
    assert {m["state_key"]: m["content"]["membership"] for m in members}[carol.user_id] == "knock"
    synced = (await server.api("GET", "sync", carol, params={"timeout": 0})).json()
    knock_state = synced["rooms"]["knock"][room]["knock_state"]["events"]
    assert {(e["type"], e["state_key"]) for e in knock_state} >= {("m.room.join_rules", ""), ("m.room.member", carol.user_id)}
    assert room not in synced["rooms"]["join"]
    assert (await server.api("POST", f"rooms/{room}/invite", alice, json={"user_id": carol.user_id})).status_code \
        == 200
    assert (await server.api("POST", f"rooms/{room}/join", carol, json={})).status_code == 200


@pytest.mark.parametrize("version", ["8", "9", "10", "11", "12"])
async def test_restricted_join(server: RunningServer, version: str) -> None:
    alice, bob, carol = await server.register(), await server.register(), await server.register()
    space = await create_room(server, alice, room_version=version, invite=[bob.user_id])
    assert (await server.api("POST", f"rooms/{space}/join", bob, json={})).status_code == 200
    rule = {"join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]}
    room = await create_room(server, alice, room_version=version,
                             initial_state=[{"type": "m.room.join_rules", "content": rule}])
    joined = await server.api("POST", f"rooms/{room}/join", bob, json={})
    assert joined.status_code == 200, joined.text
    member = (await state_of(server, bob, room))[("m.room.member", bob.user_id)]
    assert member["content"]["join_authorised_via_users_server"] == alice.user_id
    await expect_error(await server.api("POST", f"rooms/{room}/join", carol, json={}), 403, "M_FORBIDDEN")


async def test_upgrade_errors(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200
    await expect_error(await server.api("POST", f"rooms/{room}/upgrade", alice, json={"new_version": "99"}),
                       400, "M_UNSUPPORTED_ROOM_VERSION")
    await expect_error(await server.api("POST", f"rooms/{room}/upgrade", alice, json={}), 400, "M_MISSING_PARAM")
    await expect_error(await server.api("POST", f"rooms/{room}/upgrade", bob, json={"new_version": "12"}),
                       403, "M_FORBIDDEN")


@pytest.mark.parametrize("version", ["11", "12"])
async def test_trusted_private_chat_invitees_in_every_version(server: RunningServer, version: str) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="trusted_private_chat", invite=[bob.user_id],
                             room_version=version)
    state = await state_of(server, alice, room)
    create, power = state[("m.room.create", "")]["content"], state[("m.room.power_levels", "")]["content"]
    if ROOM_VERSIONS[version].infinite_creators:
        # v12: invitees are additional creators (spec, createRoom), not listed in the levels.
        assert create["additional_creators"] == [bob.user_id] and bob.user_id not in power["users"]
    else:
        assert "additional_creators" not in create and power["users"][bob.user_id] == 100
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200
    put = await server.api("PUT", f"rooms/{room}/state/m.room.topic", bob, json={"topic": "bob's"})
    assert put.status_code == 200, put.text


async def test_presets_initial_state_and_upgrade_keep_directory_and_history(server: RunningServer) -> None:
    alice = await server.register()
    # The spec's presets: private chats let guests join, public ones do not.
    private = await create_room(server, alice)
    public = await create_room(server, alice, preset="public_chat", visibility="public",
                               initial_state=[{"type": "m.room.history_visibility",
                                               "content": {"history_visibility": "joined"}}])
    assert (await state_of(server, alice, private))[("m.room.guest_access", "")]["content"] == {
        "guest_access": "can_join"}
    state = await state_of(server, alice, public)
    assert state[("m.room.guest_access", "")]["content"] == {"guest_access": "forbidden"}
    # initial_state replaces the preset's event instead of following it.
    messages = (await server.api("GET", f"rooms/{public}/messages", alice, params={"dir": "f", "limit": 50})).json()
    visibility = [e for e in messages["chunk"] if e["type"] == "m.room.history_visibility"]
    assert [e["content"] for e in visibility] == [{"history_visibility": "joined"}]

    upgraded = await server.api("POST", f"rooms/{public}/upgrade", alice, json={"new_version": "12"})
    assert upgraded.status_code == 200, upgraded.text
    new_room = upgraded.json()["replacement_room"]
    new_state = await state_of(server, alice, new_room)
    assert new_state[("m.room.history_visibility", "")]["content"] == {"history_visibility": "joined"}
    assert new_state[("m.room.guest_access", "")]["content"] == {"guest_access": "forbidden"}
    # The replacement takes the old room's place in the directory.
    listed = {r["room_id"] for r in (await server.api("GET", "publicRooms", alice)).json()["chunk"]}
    assert new_room in listed and public not in listed
    for room, expected in ((new_room, "public"), (public, "private")):
        shown = await server.api("GET", f"directory/list/room/{room}", alice)
        assert shown.json() == {"visibility": expected}


@pytest.mark.parametrize("version", VERSIONS)
def test_redaction_algorithm_per_version(version: str) -> None:
    level = {"v1": 1, "v6": 6, "v8": 8, "v9": 9, "v11": 11}[ROOM_VERSIONS[version].redaction]
    aliases = redact_event({"type": "m.room.aliases", "content": {"aliases": ["#a:x"]}}, version)
    assert aliases["content"] == ({"aliases": ["#a:x"]} if level < 6 else {})
    rules = redact_event({"type": "m.room.join_rules", "content": {"join_rule": "restricted", "allow": []}},
                         version)
    assert ("allow" in rules["content"]) == (level >= 8)
    member = redact_event({"type": "m.room.member", "origin": "x",
                           "content": {"membership": "join", "join_authorised_via_users_server": "@a:x"}}, version)
    assert ("join_authorised_via_users_server" in member["content"]) == (level >= 9)
    assert ("origin" in member) == (level < 11)
    create = redact_event({"type": "m.room.create", "content": {"creator": "@a:x", "m.federate": True}}, version)
    assert create["content"] == ({"creator": "@a:x", "m.federate": True} if level >= 11 else {"creator": "@a:x"})
    power = redact_event({"type": "m.room.power_levels", "content": {"invite": 0, "users": {}}}, version)
    assert ("invite" in power["content"]) == (level >= 11)


@pytest.mark.parametrize("multi_writer", [False, True], ids=["one-writer", "several-writers"])
async def test_v12_rooms_with_equal_create_events_in_one_millisecond_get_their_own_ids(
        make_config: Any, database_url: str, multi_writer: bool) -> None:
    # In v12 the room id is the create event's hash: equal requests by one user at one
    # instant would make equal create events.  Each room gets its own id instead of a 500,
    # also when several event writers run at once (the insert claims the id).
    if multi_writer and not database_url.startswith("mysql"):
        pytest.skip("several event writers are a MySQL/MariaDB mode")
    clock = ManualClock(start_ms=1_800_000_000_000)
    overrides = {"database": {"url": database_url, "multi_writer": True}} if multi_writer else {}
    async with serve_homeserver(make_config(**overrides), clock=clock) as server:
        alice = await server.register()
        answers = await asyncio.gather(*(server.api("POST", "createRoom", alice, json={"room_version": "12"})
                                         for _ in range(3)))
        assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
        rooms = [a.json()["room_id"] for a in answers]
        assert len(set(rooms)) == 3
        for room in rooms:
            state = await state_of(server, alice, room)
            assert state[("m.room.create", "")]["content"]["room_version"] == "12"
            await send_text(server, alice, room, "still its own room")

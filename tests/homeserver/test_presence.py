"""Presence: PUT/GET status, sync activity, visibility only to users sharing a room,
the initial sync's snapshot (the earlier app's online_users), and going offline."""

from __future__ import annotations

import asyncio
from typing import Any

from homeserver.services.clock import ManualClock
from tests.homeserver.test_receipts_helpers import create_room, presence_of, q, sync, sync_until
from tests.support.server import RunningServer, serve_homeserver


async def test_set_and_get_own_presence(server: RunningServer) -> None:
    alice = await server.register()
    path = f"presence/{q(alice.user_id)}/status"
    fresh = await server.api("GET", path, alice)
    assert fresh.status_code == 200
    assert fresh.json() == {"presence": "offline"}

    put = await server.api("PUT", path, alice, json={"presence": "online", "status_msg": "at work"})
    assert put.status_code == 200
    assert put.json() == {}
    body = (await server.api("GET", path, alice)).json()
    assert body["presence"] == "online"
    assert body["status_msg"] == "at work"
    assert body["currently_active"] is True
    assert isinstance(body["last_active_ago"], int) and body["last_active_ago"] >= 0

    await server.api("PUT", path, alice, json={"presence": "unavailable"})
    body = (await server.api("GET", path, alice)).json()
    assert body["presence"] == "unavailable"
    assert "status_msg" not in body
    assert body["currently_active"] is False


async def test_presence_refusals(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    path = f"presence/{q(alice.user_id)}/status"
    other = await server.api("PUT", path, bob, json={"presence": "online"})
    assert other.status_code == 403
    assert other.json()["errcode"] == "M_FORBIDDEN"
    for body, errcode in (
        ({"presence": "busy"}, "M_INVALID_PARAM"),
        ({"presence": 1}, "M_INVALID_PARAM"),
        ({}, "M_MISSING_PARAM"),
        ({"presence": "online", "status_msg": 5}, "M_INVALID_PARAM"),
        ({"presence": "online", "status_msg": "x" * 5000}, "M_INVALID_PARAM"),
    ):
        response = await server.api("PUT", path, alice, json=body)
        assert response.status_code == 400, body
        assert response.json()["errcode"] == errcode, body
    not_json = await server.api("PUT", path, alice, content=b"[")
    assert not_json.status_code == 400
    bad_user = await server.api("GET", "presence/alice/status", alice)
    assert bad_user.status_code == 400
    assert bad_user.json()["errcode"] == "M_INVALID_PARAM"
    unauthenticated = await server.api("GET", path)
    assert unauthenticated.status_code == 401


async def test_presence_is_only_visible_to_users_sharing_a_room(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    room_id = await create_room(server, alice, bob)
    await create_room(server, carol)  # Carol has rooms, but none with Alice

    await server.api("PUT", f"presence/{q(alice.user_id)}/status", alice,
                     json={"presence": "online", "status_msg": "hello"})
    seen = await server.api("GET", f"presence/{q(alice.user_id)}/status", bob)
    assert seen.status_code == 200
    assert seen.json()["presence"] == "online"
    hidden = await server.api("GET", f"presence/{q(alice.user_id)}/status", carol)
    assert hidden.status_code == 403
    assert hidden.json()["errcode"] == "M_FORBIDDEN"
    # A user who does not exist looks exactly like a stranger.
    ghost = await server.api("GET", f"presence/{q('@ghost:' + server.config.server_name)}/status", carol)
    assert ghost.status_code == 403
    assert ghost.json() == hidden.json()

    bob_initial = await sync(server, bob, set_presence="offline")
    carol_initial = await sync(server, carol, set_presence="offline")
    assert presence_of(bob_initial)[alice.user_id]["presence"] == "online"
    assert presence_of(bob_initial)[alice.user_id]["status_msg"] == "hello"
    assert alice.user_id not in presence_of(carol_initial)

    # A change reaches Bob's waiting long-poll, and never Carol.
    bob_wait = asyncio.create_task(
        sync_until(server, bob, bob_initial["next_batch"],
                   lambda b: alice.user_id in presence_of(b), timeout_ms=10_000)
    )
    await asyncio.sleep(0.1)
    await server.api("PUT", f"presence/{q(alice.user_id)}/status", alice, json={"presence": "unavailable"})
    woken = await asyncio.wait_for(bob_wait, 30)
    assert presence_of(woken)[alice.user_id]["presence"] == "unavailable"
    carol_next = await sync(server, carol, carol_initial["next_batch"], timeout_ms=300, set_presence="offline")
    assert alice.user_id not in presence_of(carol_next)
    assert room_id not in carol_next.get("rooms", {}).get("join", {})


async def test_sync_activity_sets_presence(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    await create_room(server, alice, bob)
    path = f"presence/{q(alice.user_id)}/status"

    # set_presence=offline: the sync does not mark the user online.
    await sync(server, alice, set_presence="offline")
    assert (await server.api("GET", path, bob)).json()["presence"] == "offline"
    # The default (online).
    first = await sync(server, alice)
    assert (await server.api("GET", path, bob)).json()["presence"] == "online"
    assert presence_of(first)[alice.user_id]["presence"] == "online"
    # unavailable.
    await sync(server, alice, first["next_batch"], set_presence="unavailable")
    assert (await server.api("GET", path, bob)).json()["presence"] == "unavailable"
    # A default sync brings a user who was unavailable by sync back online...
    await sync(server, alice)
    assert (await server.api("GET", path, bob)).json()["presence"] == "online"
    # ...but an unavailable the user chose with PUT is kept until they change it.
    await server.api("PUT", path, alice, json={"presence": "unavailable"})
    await sync(server, alice)
    assert (await server.api("GET", path, bob)).json()["presence"] == "unavailable"
    await server.api("PUT", path, alice, json={"presence": "online"})
    assert (await server.api("GET", path, bob)).json()["presence"] == "online"

    bad = await server.api("GET", "sync", alice, params={"set_presence": "busy", "timeout": "0"})
    assert bad.status_code == 400
    assert bad.json()["errcode"] == "M_INVALID_PARAM"


async def test_initial_sync_lists_everyone_online_sharing_a_room(server: RunningServer) -> None:
    """The earlier app's ``online_users`` at login."""
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    await create_room(server, alice, bob)
    await create_room(server, carol, alice)
    await sync(server, bob)
    await sync(server, carol)
    initial = await sync(server, alice)
    seen: dict[str, Any] = presence_of(initial)
    assert {u: seen[u]["presence"] for u in (alice.user_id, bob.user_id, carol.user_id)} == {
        alice.user_id: "online", bob.user_id: "online", carol.user_id: "online"
    }
    # Bob and Carol share no room: neither sees the other.
    assert carol.user_id not in presence_of(await sync(server, bob))
    assert bob.user_id not in presence_of(await sync(server, carol))


async def test_users_who_stop_syncing_go_offline(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        bob = await server.register()
        await create_room(server, alice, bob)
        await sync(server, alice)
        bob_initial = await sync(server, bob, set_presence="offline")
        assert presence_of(bob_initial)[alice.user_id]["presence"] == "online"

        presence = server.hs.services.presence
        status = f"presence/{q(alice.user_id)}/status"
        # (Other tests' users share the database: only Alice is checked.)
        with server.hs.database.activated():
            clock.advance(presence.offline_after_ms // 2)
            await presence.mark_stale_offline()
        assert (await server.api("GET", status, bob)).json()["presence"] == "online"
        with server.hs.database.activated():
            clock.advance(presence.offline_after_ms)
            assert await presence.mark_stale_offline() >= 1
        assert (await server.api("GET", status, bob)).json()["presence"] == "offline"

        later = await sync(server, bob, bob_initial["next_batch"], set_presence="offline")
        content = presence_of(later)[alice.user_id]
        assert content["presence"] == "offline"
        assert content["last_active_ago"] >= presence.offline_after_ms
        got = await server.api("GET", f"presence/{q(alice.user_id)}/status", bob)
        assert got.json()["presence"] == "offline"

        # Syncing again brings Alice back online.
        await sync(server, alice)
        assert (await server.api("GET", f"presence/{q(alice.user_id)}/status", bob)).json()[
            "presence"
        ] == "online"


async def test_a_new_room_member_brings_their_presence(server: RunningServer) -> None:
    alice = await server.register()
    dave = await server.register()
    room_id = await create_room(server, alice)
    await server.api("PUT", f"presence/{q(dave.user_id)}/status", dave,
                     json={"presence": "online", "status_msg": "new here"})
    alice_initial = await sync(server, alice, set_presence="offline")
    assert dave.user_id not in presence_of(alice_initial)

    invited = await server.api("POST", f"rooms/{q(room_id)}/invite", alice, json={"user_id": dave.user_id})
    assert invited.status_code == 200, invited.text
    assert (await server.api("POST", f"rooms/{q(room_id)}/join", dave, json={})).status_code == 200
    # Dave's presence did not change, but Alice now shares a room with him.
    later = await sync(server, alice, alice_initial["next_batch"], set_presence="offline")
    assert presence_of(later)[dave.user_id]["status_msg"] == "new here"

"""Admin moderation of accounts takes effect: lock, suspend, shadow-ban, rate-limit overrides."""

from __future__ import annotations

from typing import Any

from tests.homeserver.admin.helpers import A1, A2, SECRET, expect, register_with_secret
from tests.homeserver.room_helpers import create_room, send_text, sync, timeline
from tests.support.server import Account, RunningServer, serve_homeserver


async def test_locked_account_gets_m_user_locked(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    expect(await server.api("PUT", f"{A2}/users/{alice.user_id}", admin, json={"locked": True}))
    body = expect(await server.api("GET", "account/whoami", alice), 401, "M_USER_LOCKED")
    assert body["soft_logout"] is True
    expect(await server.api("POST", "createRoom", alice, json={}), 401, "M_USER_LOCKED")
    assert expect(await server.api("GET", f"{A2}/users/{alice.user_id}", admin))["locked"] is True
    expect(await server.api("PUT", f"{A2}/users/{alice.user_id}", admin, json={"locked": False}))
    expect(await server.api("GET", "account/whoami", alice))
    # A locked account may still log out.
    expect(await server.api("PUT", f"{A2}/users/{alice.user_id}", admin, json={"locked": True}))
    expect(await server.api("POST", "logout", alice, json={}))


async def test_suspended_account_can_read_and_leave_but_not_send(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    room = await create_room(server, alice)
    body = expect(await server.api("PUT", f"{A1}/suspend/{alice.user_id}", admin, json={"suspend": True}))
    assert body == {f"user_{alice.user_id}_suspended": True}
    send = await server.api("PUT", f"rooms/{room}/send/m.room.message/t1", alice,
                            json={"msgtype": "m.text", "body": "hi"})
    expect(send, 403, "M_USER_SUSPENDED")
    expect(await server.api("GET", f"rooms/{room}/state", alice))
    expect(await server.api("POST", f"rooms/{room}/leave", alice, json={}))
    expect(await server.api("PUT", f"{A1}/suspend/{alice.user_id}", admin, json={"suspend": False}))
    expect(await server.api("POST", "createRoom", alice, json={}))
    expect(await server.api("PUT", f"{A1}/suspend/{alice.user_id}", admin, json={"suspend": 1}), 400,
           "M_INVALID_PARAM")


async def test_shadow_banned_messages_reach_nobody(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    room = await create_room(server, alice, invite=[bob.user_id])
    expect(await server.api("POST", f"rooms/{room}/join", bob))
    expect(await server.api("POST", f"{A1}/users/{alice.user_id}/shadow_ban", admin, json={}))
    assert expect(await server.api("GET", f"{A2}/users/{alice.user_id}", admin))["shadow_banned"] is True
    fake = await send_text(server, alice, room, "spam")
    assert fake.startswith("$")
    bodies = [e["content"].get("body") for e in timeline(await sync(server, bob), room)]
    assert "spam" not in bodies
    expect(await server.api("DELETE", f"{A1}/users/{alice.user_id}/shadow_ban", admin))
    await send_text(server, alice, room, "hello")
    bodies = [e["content"].get("body") for e in timeline(await sync(server, bob), room)]
    assert "hello" in bodies and "spam" not in bodies


async def test_rate_limit_override(make_config: Any) -> None:
    config = make_config(registration={"open": True, "require_email": False, "shared_secret": SECRET},
                         rate_limits={"messages_per_minute": 2})
    async with serve_homeserver(config) as server:
        admin = await register_with_secret(server, "root", "admin password 1", admin=True)
        alice = await server.register("alice")
        room = await create_room(server, alice)
        path = f"{A1}/users/{alice.user_id}/override_ratelimit"
        assert expect(await server.api("GET", path, admin)) == {}
        body = expect(await server.api("POST", path, admin, json={"messages_per_second": 0, "burst_count": 0}))
        assert body == {"messages_per_second": 0, "burst_count": 0}
        assert expect(await server.api("GET", path, admin)) == body
        for i in range(5):
            await send_text(server, alice, room, f"m{i}")
        expect(await server.api("DELETE", path, admin))
        assert expect(await server.api("GET", path, admin)) == {}
        responses = [
            await server.api("PUT", f"rooms/{room}/send/m.room.message/x{i}", alice,
                             json={"msgtype": "m.text", "body": "x"})
            for i in range(3)
        ]
        assert responses[-1].status_code == 429, [r.status_code for r in responses]
        expect(await server.api("POST", path, admin, json={"messages_per_second": -1}), 400, "M_INVALID_PARAM")

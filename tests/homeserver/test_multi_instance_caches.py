"""What one instance remembers for /sync is never trusted past a change made on another.

Two instances share one database.  A /sync remembers the token (with its
device and account), the user's memberships, presence and account data; each
test makes instance two remember them, changes them on instance one and
checks that instance two's very next /sync sees the change, with no wake-up
to wait for (none is awaited: the sync reads the change through the stream
positions it reads anyway).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.homeserver.admin.helpers import A2, SECRET, register_with_secret
from tests.homeserver.room_helpers import create_room, send_text, sync, timeline
from tests.support.redis import require_redis
from tests.support.server import Account, RunningServer, serve_homeserver


def _configs(make_config: Any, bus: str) -> tuple[Any, Any]:
    first = make_config(registration={"open": True, "require_email": False, "shared_secret": SECRET},
                        **({"redis_url": require_redis()} if bus == "redis" else {}))
    return first, first.replace()


async def _login_on(server: RunningServer, account: Account) -> Account:
    """A second device of ``account`` (its own token), logged in on ``server``."""
    body = {"type": "m.login.password", "identifier": {"type": "m.id.user", "user": account.user_id},
            "password": account.password}
    response = await server.client.post("/_matrix/client/v3/login", json=body)
    assert response.status_code == 200, response.text
    found = response.json()
    return Account(account.user_id, found["device_id"], found["access_token"], account.password)


@pytest.mark.parametrize("bus", ["database-polling", "redis"])
async def test_a_logout_on_one_instance_refuses_the_token_on_the_other_at_once(make_config: Any, bus: str
                                                                              ) -> None:
    one_config, two_config = _configs(make_config, bus)
    async with serve_homeserver(one_config) as one, serve_homeserver(two_config) as two:
        alice = await one.register()
        since = (await sync(two, alice))["next_batch"]
        await sync(two, alice, since=since)  # instance two remembers the token now
        assert (await one.api("POST", "logout", alice)).status_code == 200
        refused = await two.api("GET", "sync", alice, params={"since": since, "timeout": 0})
        assert refused.status_code == 401, refused.text
        assert refused.json()["errcode"] == "M_UNKNOWN_TOKEN"


@pytest.mark.parametrize("bus", ["database-polling", "redis"])
async def test_a_deleted_device_and_a_locked_account_are_refused_on_the_other_instance(make_config: Any,
                                                                                      bus: str) -> None:
    one_config, two_config = _configs(make_config, bus)
    async with serve_homeserver(one_config) as one, serve_homeserver(two_config) as two:
        alice = await one.register(password="alice password 1")
        phone = await _login_on(two, alice)
        bob = await one.register(password="bob password 1")
        for account in (phone, bob):
            since = (await sync(two, account))["next_batch"]
            await sync(two, account, since=since)
        # Alice deletes her phone from her first device (on instance one).
        deleted = await one.api("POST", "delete_devices", alice, json={
            "devices": [phone.device_id],
            "auth": {"type": "m.login.password", "password": "alice password 1",
                     "identifier": {"type": "m.id.user", "user": alice.user_id}}})
        assert deleted.status_code == 200, deleted.text
        refused = await two.api("GET", "sync", phone, params={"timeout": 0})
        assert refused.status_code == 401 and refused.json()["errcode"] == "M_UNKNOWN_TOKEN", refused.text
        # An admin locks Bob's account on instance one.
        root = await register_with_secret(one, "root", "admin password 1", admin=True)
        locked = await one.api("PUT", f"{A2}/users/{bob.user_id}", root, json={"locked": True})
        assert locked.status_code == 200, locked.text
        refused = await two.api("GET", "sync", bob, params={"timeout": 0})
        assert refused.status_code == 401 and refused.json()["errcode"] == "M_USER_LOCKED", refused.text


@pytest.mark.parametrize("bus", ["database-polling", "redis"])
async def test_memberships_and_messages_changed_on_one_instance_are_seen_by_the_next_sync_on_the_other(
        make_config: Any, bus: str) -> None:
    one_config, two_config = _configs(make_config, bus)
    async with serve_homeserver(one_config) as one, serve_homeserver(two_config) as two:
        alice, bob = await one.register(), await one.register()
        first = await create_room(one, alice, preset="public_chat")
        assert (await one.api("POST", f"join/{first}", bob)).status_code == 200
        since = (await sync(two, bob))["next_batch"]
        body = await sync(two, bob, since=since)  # instance two remembers Bob's memberships
        since = body["next_batch"]
        # Bob joins a second room on instance one; alice writes in both.
        second = await create_room(one, alice, preset="public_chat")
        assert (await one.api("POST", f"join/{second}", bob)).status_code == 200
        await send_text(one, alice, first, "in the first room")
        await send_text(one, alice, second, "in the second room")
        body = await sync(two, bob, since=since)
        assert second in body["rooms"]["join"], body["rooms"]
        assert [e["content"]["body"] for e in timeline(body, first)] == ["in the first room"]
        assert "in the second room" in [e["content"].get("body") for e in timeline(body, second)]
        since = body["next_batch"]
        # Bob leaves the first room on instance one: the next sync on two says so, and
        # nothing more of that room reaches him.
        assert (await one.api("POST", f"rooms/{first}/leave", bob, json={})).status_code == 200
        body = await sync(two, bob, since=since)
        assert first in body["rooms"]["leave"], body["rooms"]
        assert first not in body["rooms"]["join"]
        since = body["next_batch"]
        await send_text(one, alice, first, "after bob left")
        await send_text(one, alice, second, "still shared")
        body = await sync(two, bob, since=since)
        assert first not in body["rooms"]["join"] and first not in body["rooms"]["leave"]
        assert [e["content"]["body"] for e in timeline(body, second)] == ["still shared"]


@pytest.mark.parametrize("bus", ["database-polling", "redis"])
async def test_account_data_set_on_one_instance_is_used_by_the_next_sync_on_the_other(make_config: Any,
                                                                                    bus: str) -> None:
    one_config, two_config = _configs(make_config, bus)
    async with serve_homeserver(one_config) as one, serve_homeserver(two_config) as two:
        alice, bob = await one.register(), await one.register()
        room = await create_room(one, alice, preset="public_chat")
        assert (await one.api("POST", f"join/{room}", bob)).status_code == 200
        since = (await sync(two, bob))["next_batch"]
        await send_text(one, alice, room, "before")
        body = await sync(two, bob, since=since)  # remembers Bob's (empty) ignore list
        assert [e["content"]["body"] for e in timeline(body, room)] == ["before"]
        since = body["next_batch"]
        ignored = await one.api("PUT", f"user/{bob.user_id}/account_data/m.ignored_user_list", bob,
                                json={"ignored_users": {alice.user_id: {}}})
        assert ignored.status_code == 200, ignored.text
        await send_text(one, alice, room, "ignored")
        body = await sync(two, bob, since=since)
        assert timeline(body, room) == [], body["rooms"]["join"].get(room)

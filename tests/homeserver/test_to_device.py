"""To-device messages: idempotent send, delivered exactly once per device, deleted once acknowledged."""

from __future__ import annotations

import asyncio
from typing import Any

from homeserver.services.clock import ManualClock
from tests.homeserver.room_helpers import expect_error, sync
from tests.support.server import Account, RunningServer, serve_homeserver

DAY_MS = 24 * 3600 * 1000


async def _second_device(server: RunningServer, account: Account) -> Account:
    response = await server.api("POST", "login", json={
        "type": "m.login.password", "password": account.password,
        "identifier": {"type": "m.id.user", "user": account.user_id}})
    data = response.json()
    return Account(data["user_id"], data["device_id"], data["access_token"], account.password)


async def test_to_device_delivered_exactly_once(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    bob2 = await _second_device(server, bob)
    first = await sync(server, bob)
    first2 = await sync(server, bob2)
    body = {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}}
    path = "sendToDevice/m.test/txn1"
    assert (await server.api("PUT", path, alice, json=body)).json() == {}
    assert (await server.api("PUT", path, alice, json=body)).json() == {}  # same txn: not queued again
    star = {"messages": {bob.user_id: {"*": {"n": 2}}}}
    assert (await server.api("PUT", "sendToDevice/m.test/txn2", alice, json=star)).status_code == 200
    got = await sync(server, bob, since=first["next_batch"])
    assert got["to_device"]["events"] == [
        {"sender": alice.user_id, "type": "m.test", "content": {"n": 1}},
        {"sender": alice.user_id, "type": "m.test", "content": {"n": 2}},
    ]
    # Repeating the same since (the response was lost) delivers them again ...
    retry = await sync(server, bob, since=first["next_batch"])
    assert retry["to_device"]["events"] == got["to_device"]["events"]
    # ... the next since acknowledges and deletes them.
    after = await sync(server, bob, since=retry["next_batch"])
    assert after["to_device"]["events"] == []
    rows = await server.hs.database.fetch(
        "SELECT COUNT(*) AS n FROM to_device_messages WHERE user_id = ? AND device_id = ?", (bob.user_id, bob.device_id))
    assert int(rows[0]["n"]) == 0
    other = await sync(server, bob2, since=first2["next_batch"])
    assert other["to_device"]["events"] == [{"sender": alice.user_id, "type": "m.test", "content": {"n": 2}}]


async def test_to_device_wakes_long_poll_and_validates(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    first = await sync(server, bob)
    settle = await sync(server, bob, since=first["next_batch"], timeout=200)
    poll = asyncio.create_task(sync(server, bob, since=settle["next_batch"], timeout=20000))
    await asyncio.sleep(0.2)
    await server.api("PUT", "sendToDevice/m.ping/t1", alice,
                     json={"messages": {bob.user_id: {bob.device_id: {"ping": True}}}})
    body = await poll
    assert body["to_device"]["events"][0]["content"] == {"ping": True}
    await expect_error(await server.api("PUT", "sendToDevice/m.x/t2", alice, json={"messages": []}), 400, "M_BAD_JSON")
    await expect_error(await server.api("PUT", "sendToDevice/m.x/t3", alice, json={"messages": {"bob": {}}}),
                       400, "M_INVALID_PARAM")
    await expect_error(await server.api("PUT", "sendToDevice/m.x/t4", alice,
                                        json={"messages": {bob.user_id: {"bad device!": {}}}}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("PUT", "sendToDevice/m.x/t5", alice,
                                        json={"messages": {bob.user_id: {bob.device_id: "x"}}}), 400, "M_BAD_JSON")


async def test_deleted_device_loses_its_queue(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    bob2 = await _second_device(server, bob)
    await server.api("PUT", "sendToDevice/m.x/t1", alice,
                     json={"messages": {bob.user_id: {bob2.device_id: {"a": 1}}}})
    await server.api("POST", "delete_devices", bob, json={
        "devices": [bob2.device_id],
        "auth": {"type": "m.login.password", "password": bob.password,
                 "identifier": {"type": "m.id.user", "user": bob.user_id}}})
    rows = await server.hs.database.fetch(
        "SELECT COUNT(*) AS n FROM to_device_messages WHERE user_id = ? AND device_id = ?", (bob.user_id, bob2.device_id))
    assert int(rows[0]["n"]) == 0


async def test_messages_for_devices_that_do_not_exist_are_not_queued(server: RunningServer) -> None:
    """Queues for unknown device ids were kept forever: nobody syncs or deletes them."""
    alice = await server.register()
    bob = await server.register()
    body = {"messages": {
        bob.user_id: {"NOSUCHDEVICE": {"n": 1}, bob.device_id: {"n": 2}},
        f"@nobody:{server.config.server_name}": {"*": {"n": 3}, "DEV": {"n": 4}},
    }}
    assert (await server.api("PUT", "sendToDevice/m.test/unknown1", alice, json=body)).status_code == 200
    rows = await server.hs.database.fetch(
        "SELECT user_id, device_id FROM to_device_messages WHERE sender = ?", (alice.user_id,))
    assert [(r["user_id"], r["device_id"]) for r in rows] == [(bob.user_id, bob.device_id)]


async def test_a_sender_cannot_fill_a_devices_queue(server: RunningServer) -> None:
    """Queues were unbounded; now one sender may queue 100 per device and everyone 1000."""
    alice = await server.register()
    carol = await server.register()
    bob = await server.register()
    first = await sync(server, bob)
    body = {"messages": {bob.user_id: {bob.device_id: {"n": 1}}}}
    for n in range(100):
        response = await server.api("PUT", f"sendToDevice/m.test/q{n}", alice, json=body)
        assert response.status_code == 200, response.text
    full = await server.api("PUT", "sendToDevice/m.test/q100", alice, json=body)
    await expect_error(full, 429, "M_LIMIT_EXCEEDED")
    assert full.json()["retry_after_ms"] == 60_000 and full.headers["Retry-After"] == "60"
    # Another sender is not blocked by alice's share.
    other = await server.api("PUT", "sendToDevice/m.test/c1", carol, json=body)
    assert other.status_code == 200
    # Once bob syncs (and acknowledges), alice may send again.
    got = await sync(server, bob, since=first["next_batch"])
    await sync(server, bob, since=got["next_batch"])
    again = await server.api("PUT", "sendToDevice/m.test/q101", alice, json=body)
    assert again.status_code == 200, again.text


async def test_a_transaction_id_is_remembered_for_24_hours(make_config: Any) -> None:
    """A retried send within a day is the same send; after the day's cleanup the id is new again."""
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        bob = await server.register()
        since = (await sync(server, bob))["next_batch"]

        async def send(n: int) -> None:
            body = {"messages": {bob.user_id: {bob.device_id: {"n": n}}}}
            assert (await server.api("PUT", "sendToDevice/m.test/daily", alice, json=body)).status_code == 200

        async def housekeeping() -> None:
            with server.hs.database.activated():
                for task in server.hs.housekeepers:
                    await task()

        async def received() -> list[int]:
            nonlocal since
            body = await sync(server, bob, since=since)
            since = body["next_batch"]
            return [event["content"]["n"] for event in body["to_device"]["events"]]

        await send(1)
        assert await received() == [1]
        clock.advance(DAY_MS - 1000)
        await housekeeping()
        await send(2)  # a retry of the same transaction: nothing new
        assert await received() == []
        clock.advance(2000)
        await housekeeping()
        await send(3)  # the day is over: the id names a new transaction
        assert await received() == [3]


async def _device_named(server: RunningServer, account: Account, device_id: str) -> None:
    response = await server.api("POST", "login", json={
        "type": "m.login.password", "password": account.password, "device_id": device_id,
        "identifier": {"type": "m.id.user", "user": account.user_id}})
    assert response.status_code == 200, response.text


async def test_a_full_queue_does_not_block_another_users_device_of_the_same_id(server: RunningServer) -> None:
    """Quotas count per user and device: bob's full SHARED queue says nothing about carol's SHARED device."""
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    for account in (bob, carol):
        await _device_named(server, account, "SHARED")
        await _device_named(server, account, "OTHER")
    # Fill bob's SHARED and carol's OTHER with alice's share (one request reaches both).
    fill = {"messages": {bob.user_id: {"SHARED": {"n": 1}}, carol.user_id: {"OTHER": {"n": 1}}}}
    for n in range(100):
        response = await server.api("PUT", f"sendToDevice/m.test/f{n}", alice, json=fill)
        assert response.status_code == 200, response.text
    await expect_error(await server.api("PUT", "sendToDevice/m.test/full", alice, json=fill), 429, "M_LIMIT_EXCEEDED")
    # Listed after a user whose queue has room, carol's full OTHER still refuses the request.
    behind = {"messages": {bob.user_id: {"OTHER": {"n": 3}}, carol.user_id: {"OTHER": {"n": 3}}}}
    await expect_error(await server.api("PUT", "sendToDevice/m.test/behind", alice, json=behind),
                       429, "M_LIMIT_EXCEEDED")
    # bob's OTHER and carol's SHARED are empty: one request to both is accepted.
    cross = {"messages": {bob.user_id: {"OTHER": {"n": 2}}, carol.user_id: {"SHARED": {"n": 2}}}}
    response = await server.api("PUT", "sendToDevice/m.test/cross", alice, json=cross)
    assert response.status_code == 200, response.text


async def test_messages_sent_before_a_devices_first_sync_arrive_in_it(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    body = {"messages": {bob.user_id: {bob.device_id: {"early": True}}}}
    assert (await server.api("PUT", "sendToDevice/m.test/early", alice, json=body)).status_code == 200
    first = await sync(server, bob)
    assert first["to_device"]["events"] == [{"sender": alice.user_id, "type": "m.test", "content": {"early": True}}]
    assert (await sync(server, bob, since=first["next_batch"]))["to_device"]["events"] == []

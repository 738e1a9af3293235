"""Sync tokens and long-poll paths: paging past MAX_PER_SYNC to-device messages, bad tokens, timeouts."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from homeserver.services.sync_api import STREAMS
from homeserver.services.to_device import MAX_PER_SYNC
from tests.homeserver.room_helpers import create_room, expect_error, send_text, sync
from tests.homeserver.test_wakeups import no_database_poll, settle
from tests.support.server import RunningServer, serve_homeserver

EXTRA = 30


@pytest.fixture
async def quiet_server(make_config: Any) -> AsyncIterator[RunningServer]:
    async with serve_homeserver(make_config(), before_start=no_database_poll) as running:
        yield running


def _numbers(body: dict[str, Any]) -> list[int]:
    return [int(e["content"]["n"]) for e in body["to_device"]["events"]]


def _positions(token: str) -> list[int]:
    return [int(p) for p in token[1:].split("_")]


async def test_more_pending_to_device_messages_than_fit_one_sync(quiet_server: RunningServer) -> None:
    server = quiet_server
    alice = await server.register()
    carol = await server.register()  # two senders: each stays within the per-sender queue cap
    bob = await server.register()
    start = (await sync(server, bob))["next_batch"]
    total = MAX_PER_SYNC + EXTRA
    for n in range(total):
        response = await server.api("PUT", f"sendToDevice/m.test/many{n}", (alice, carol)[n % 2],
                                    json={"messages": {bob.user_id: {bob.device_id: {"n": n}}}})
        assert response.status_code == 200, response.text

    first = await sync(server, bob, since=start)
    assert _numbers(first) == list(range(MAX_PER_SYNC))
    # The response was lost: the same since gives the same page again, nothing skipped.
    again = await sync(server, bob, since=start)
    assert _numbers(again) == list(range(MAX_PER_SYNC))
    assert again["next_batch"] == first["next_batch"]
    # The rest is pending, so a long-poll answers at once (bounded well below its timeout).
    rest = await asyncio.wait_for(sync(server, bob, since=first["next_batch"], timeout=20_000), 10)
    assert _numbers(rest) == list(range(MAX_PER_SYNC, total))
    # Acknowledged: the queue is empty and nothing comes twice.
    done = await sync(server, bob, since=rest["next_batch"])
    assert _numbers(done) == []
    rows = await server.hs.database.fetch(
        "SELECT COUNT(*) AS n FROM to_device_messages WHERE user_id = ? AND device_id = ?",
        (bob.user_id, bob.device_id))
    assert int(rows[0]["n"]) == 0
    # The to-device position moves forward page by page, never past what was delivered.
    index = STREAMS.index("to_device")
    steps = [_positions(t)[index] for t in (start, first["next_batch"], rest["next_batch"])]
    assert steps[0] < steps[1] < steps[2]


async def test_exactly_one_pages_worth_of_to_device_messages_arrives_in_one_sync(quiet_server: RunningServer) -> None:
    server = quiet_server
    alice = await server.register()
    carol = await server.register()
    bob = await server.register()
    start = (await sync(server, bob))["next_batch"]
    for n in range(MAX_PER_SYNC):
        response = await server.api("PUT", f"sendToDevice/m.test/page{n}", (alice, carol)[n % 2],
                                    json={"messages": {bob.user_id: {bob.device_id: {"n": n}}}})
        assert response.status_code == 200, response.text
    page = await sync(server, bob, since=start)
    assert _numbers(page) == list(range(MAX_PER_SYNC))
    assert _numbers(await sync(server, bob, since=page["next_batch"])) == []


async def test_messages_arriving_while_a_page_is_pending_are_not_lost(quiet_server: RunningServer) -> None:
    server = quiet_server
    alice = await server.register()
    carol = await server.register()  # two senders: each stays within the per-sender queue cap
    bob = await server.register()
    start = (await sync(server, bob))["next_batch"]

    async def send(n: int) -> None:
        response = await server.api("PUT", f"sendToDevice/m.test/late{n}", (alice, carol)[n % 2],
                                    json={"messages": {bob.user_id: {bob.device_id: {"n": n}}}})
        assert response.status_code == 200, response.text

    for n in range(MAX_PER_SYNC + 5):
        await send(n)
    first = await sync(server, bob, since=start)
    for n in range(MAX_PER_SYNC + 5, MAX_PER_SYNC + 10):
        await send(n)
    seen = _numbers(first)
    since = first["next_batch"]
    for _ in range(5):
        body = await sync(server, bob, since=since)
        if not body["to_device"]["events"]:
            break
        seen += _numbers(body)
        since = body["next_batch"]
    assert seen == list(range(MAX_PER_SYNC + 10))


@pytest.mark.parametrize("token", [
    "x1_2", "p", "p_", "pa_b", "p1__2", "p-1", "p1_-2", "p" + "_".join(["1"] * (len(STREAMS) + 1)),
    "p" + "1" * 400, "p1.5",
])
async def test_malformed_since_tokens_are_refused(server: RunningServer, token: str) -> None:
    alice = await server.register()
    response = await server.api("GET", "sync", alice, params={"since": token, "timeout": 0})
    await expect_error(response, 400, "M_INVALID_PARAM")


async def test_short_tokens_and_bad_parameters(server: RunningServer) -> None:
    alice = await server.register()
    # A token from before a stream existed (fewer positions) is still accepted.
    short = await server.api("GET", "sync", alice, params={"since": "p0", "timeout": 0})
    assert short.status_code == 200, short.text
    assert len(_positions(short.json()["next_batch"])) == len(STREAMS)
    await expect_error(await server.api("GET", "sync", alice, params={"timeout": -1}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("GET", "sync", alice, params={"set_presence": "busy"}),
                       400, "M_INVALID_PARAM")
    await expect_error(await server.api("GET", "sync", alice, params={"filter": "nope"}), 404, "M_NOT_FOUND")


async def test_timed_out_long_poll_keeps_its_positions_and_next_sync_sees_the_write(
        server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    first = await sync(server, alice)
    since = await settle(server, alice, first["next_batch"])
    empty = await sync(server, alice, since=since, timeout=300)
    assert empty["next_batch"] == since
    assert empty["rooms"]["join"] == {}
    await send_text(server, alice, room, "after the timeout")
    later = await sync(server, alice, since=empty["next_batch"])
    events = later["rooms"]["join"][room]["timeline"]["events"]
    assert [e["content"]["body"] for e in events] == ["after the timeout"]
    assert all(a <= b for a, b in zip(_positions(since), _positions(later["next_batch"]), strict=True))
    assert _positions(later["next_batch"]) != _positions(since)


async def test_initial_sync_answers_at_once_even_with_a_timeout(server: RunningServer) -> None:
    alice = await server.register()
    body = await asyncio.wait_for(sync(server, alice, timeout=20_000), 10)
    assert body["next_batch"].startswith("p")
    # full_state also answers at once, with the same positions.
    again = await asyncio.wait_for(
        sync(server, alice, since=body["next_batch"], timeout=20_000, full_state="true"), 10)
    assert _positions(again["next_batch"]) == _positions(body["next_batch"])


async def test_to_device_requests_are_bounded_and_validated(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    # The limit clients see (and the error names): 1000 device entries per request.
    too_many = {f"D{n}": {"n": n} for n in range(1001)}
    await expect_error(await server.api("PUT", "sendToDevice/m.test/big", alice,
                                        json={"messages": {bob.user_id: too_many}}), 400, "M_INVALID_PARAM")
    at_limit = {f"D{n}": {"n": n} for n in range(1000)}
    ok = await server.api("PUT", "sendToDevice/m.test/limit", alice, json={"messages": {bob.user_id: at_limit}})
    assert ok.status_code == 200, ok.text
    for bad, errcode in [({"messages": []}, "M_BAD_JSON"),
                         ({"messages": {bob.user_id: []}}, "M_BAD_JSON"),
                         ({"messages": {bob.user_id: {bob.device_id: "x"}}}, "M_BAD_JSON"),
                         ({"messages": {bob.user_id: {"bad device!": {}}}}, "M_INVALID_PARAM"),
                         ({"messages": {bob.user_id: {"!dev": {}}}}, "M_INVALID_PARAM"),
                         ({"messages": {bob.user_id: {"": {}}}}, "M_INVALID_PARAM"),
                         ({"messages": {"@x:elsewhere.example": {"bad device!": {}}}}, "M_INVALID_PARAM"),
                         ({"messages": {"@x:elsewhere.example": {"D": "x"}}}, "M_BAD_JSON"),
                         ({"messages": {"not a user id": {"D": {}}}}, "M_INVALID_PARAM")]:
        await expect_error(await server.api("PUT", f"sendToDevice/m.test/b{len(str(bad))}", alice, json=bad),
                           400, errcode)
    # Users of other servers are reached over federation: queued for their server, not refused.
    remote = await server.api("PUT", "sendToDevice/m.test/remote", alice,
                              json={"messages": {"@x:elsewhere.example": {"D": {"n": 1}}}})
    assert remote.status_code == 200, remote.text
    with server.hs.database.activated():
        rows = await server.hs.database.fetch(
            "SELECT kind, payload FROM federation_outbox WHERE destination = ?", ("elsewhere.example",))
    assert [r["kind"] for r in rows] == ["edu"] and '"m.direct_to_device"' in str(rows[0]["payload"])

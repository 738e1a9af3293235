"""Every write that /sync reports wakes a waiting long-poll, with no database poll to hide a miss.

The server's database poll (the multi-instance fallback) is switched off, so
only the notifier's direct wake-up can answer the long-poll early.  Each test
waits until the server reports the waiter, writes, then requires the answer
within half the long-poll's timeout: a missing wake-up answers only at the
timeout and fails.  Across instances the same holds over Redis.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from homeserver.app import Homeserver
from tests.homeserver.room_helpers import create_room, send_text, sync
from tests.homeserver.test_keys import upload_device
from tests.support.redis import require_redis
from tests.support.server import Account, RunningServer, serve_homeserver

LONG_POLL_MS = 20_000
BOUND_S = LONG_POLL_MS / 1000 / 2
_txn = itertools.count()


def no_database_poll(hs: Homeserver) -> None:
    # The poll's first sleep outlasts every test: only direct wake-ups remain.
    hs.services.notifier.poll_interval_s = 3600.0


@pytest.fixture
async def quiet_server(make_config: Any) -> AsyncIterator[RunningServer]:
    async with serve_homeserver(make_config(), before_start=no_database_poll) as running:
        yield running


@dataclass
class Scene:
    server: RunningServer
    alice: Account
    bob: Account
    room_id: str
    bob_event: str


async def settle(server: RunningServer, account: Account, since: str) -> str:
    """Sync until a short long-poll times out with nothing new: the stream is quiet for ``account``."""
    for _ in range(20):
        body = await sync(server, account, since=since, timeout=200)
        if body["next_batch"] == since:
            return since
        since = body["next_batch"]
    raise AssertionError("the sync stream never became quiet")


async def wait_for_waiter(server: RunningServer, count: int = 1) -> None:
    notifier = server.hs.services.notifier
    for _ in range(1000):
        if notifier.waiting_users >= count:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the long-poll never registered as a waiter")


async def woken_by(reader: RunningServer, writer: RunningServer, account: Account, since: str,
                   write: Callable[[], Awaitable[Any]]) -> dict[str, Any]:
    """Long-poll on ``reader``, write through ``writer`` once it waits; the answer must come within the bound."""
    poll = asyncio.create_task(sync(reader, account, since=since, timeout=LONG_POLL_MS))
    await wait_for_waiter(reader)
    await write()
    try:
        body = await asyncio.wait_for(poll, BOUND_S)
    except TimeoutError:
        raise AssertionError(f"no wake-up: the long-poll was not answered within {BOUND_S} s") from None
    # An answered long-poll no longer waits: waiters are not leaked.
    assert reader.hs.services.notifier.waiting_users == 0
    return body


def _ok(response: Any) -> None:
    assert response.status_code == 200, response.text


async def _message(s: Scene) -> None:
    await send_text(s.server, s.alice, s.room_id, "wake up")


async def _to_device(s: Scene) -> None:
    _ok(await s.server.api("PUT", f"sendToDevice/m.test/w{next(_txn)}", s.alice,
                           json={"messages": {s.bob.user_id: {s.bob.device_id: {"wake": 1}}}}))


async def _typing(s: Scene) -> None:
    _ok(await s.server.api("PUT", f"rooms/{s.room_id}/typing/{s.alice.user_id}", s.alice,
                           json={"typing": True, "timeout": 30000}))


async def _receipt(s: Scene) -> None:
    _ok(await s.server.api("POST", f"rooms/{s.room_id}/receipt/m.read/{s.bob_event}", s.alice, json={}))


async def _room_account_data(s: Scene) -> None:
    _ok(await s.server.api("PUT", f"user/{s.bob.user_id}/rooms/{s.room_id}/account_data/m.test", s.bob,
                           json={"wake": 1}))


async def _account_data(s: Scene) -> None:
    _ok(await s.server.api("PUT", f"user/{s.bob.user_id}/account_data/m.test", s.bob, json={"wake": 1}))


async def _presence(s: Scene) -> None:
    _ok(await s.server.api("PUT", f"presence/{s.alice.user_id}/status", s.alice,
                           json={"presence": "unavailable"}))


async def _device_keys(s: Scene) -> None:
    await upload_device(s.server, s.alice, otks=1)


async def _invite(s: Scene) -> None:
    await create_room(s.server, s.alice, preset="private_chat", invite=[s.bob.user_id])


def _joined(body: dict[str, Any], s: Scene) -> dict[str, Any]:
    return dict(body["rooms"]["join"].get(s.room_id, {}))


def _ephemeral_types(body: dict[str, Any], s: Scene) -> list[str]:
    return [e["type"] for e in _joined(body, s).get("ephemeral", {}).get("events", [])]


SOURCES: list[tuple[str, Callable[[Scene], Awaitable[None]], Callable[[dict[str, Any], Scene], bool]]] = [
    ("message", _message, lambda b, s: any(
        e.get("content", {}).get("body") == "wake up" for e in _joined(b, s).get("timeline", {}).get("events", []))),
    ("to-device", _to_device, lambda b, s: b["to_device"]["events"] == [
        {"sender": s.alice.user_id, "type": "m.test", "content": {"wake": 1}}]),
    ("typing", _typing, lambda b, s: "m.typing" in _ephemeral_types(b, s)),
    ("receipt", _receipt, lambda b, s: "m.receipt" in _ephemeral_types(b, s)),
    ("room-account-data", _room_account_data, lambda b, s: [
        e["type"] for e in _joined(b, s).get("account_data", {}).get("events", [])] == ["m.test"]),
    ("account-data", _account_data, lambda b, s: "m.test" in [e["type"] for e in b["account_data"]["events"]]),
    ("presence", _presence, lambda b, s: s.alice.user_id in [e["sender"] for e in b["presence"]["events"]]),
    ("device-keys", _device_keys, lambda b, s: s.alice.user_id in b["device_lists"]["changed"]),
    ("invite", _invite, lambda b, s: len(b["rooms"]["invite"]) == 1),
]


async def _scene(server: RunningServer) -> tuple[Scene, str]:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, preset="private_chat", invite=[bob.user_id])
    _ok(await server.api("POST", f"join/{room_id}", bob, json={}))
    bob_event = await send_text(server, bob, room_id, "hello")
    first = await sync(server, bob)
    return Scene(server, alice, bob, room_id, bob_event), await settle(server, bob, first["next_batch"])


@pytest.mark.parametrize(("write", "seen"), [s[1:] for s in SOURCES], ids=[s[0] for s in SOURCES])
async def test_write_wakes_the_waiting_long_poll(quiet_server: RunningServer, write: Any, seen: Any) -> None:
    scene, since = await _scene(quiet_server)
    body = await woken_by(quiet_server, quiet_server, scene.bob, since, lambda: write(scene))
    assert seen(body, scene), body


async def test_a_quiet_long_poll_waits_for_its_timeout(quiet_server: RunningServer) -> None:
    """The control: with nothing written, the same long-poll is not answered within the bound."""
    scene, since = await _scene(quiet_server)
    poll = asyncio.create_task(sync(quiet_server, scene.bob, since=since, timeout=LONG_POLL_MS))
    await wait_for_waiter(quiet_server)
    done, _ = await asyncio.wait({poll}, timeout=1.0)
    assert not done, "the long-poll answered although nothing was written"
    quiet_server.hs.services.notifier.wake_all()  # let it go: shutdown wakes every waiter
    body = await asyncio.wait_for(poll, BOUND_S)
    assert body["next_batch"] == since
    assert quiet_server.hs.services.notifier.waiting_users == 0


async def test_write_on_one_instance_wakes_the_other_over_redis(make_config: Any) -> None:
    """With Redis there is no database poll at all: the wake-up must travel over pub/sub."""
    config = make_config(redis_url=require_redis())
    async with serve_homeserver(config) as one, serve_homeserver(config.replace()) as two:
        scene, since = await _scene(one)
        writer_scene = Scene(two, scene.alice, scene.bob, scene.room_id, scene.bob_event)
        body = await woken_by(one, two, scene.bob, since, lambda: _message(writer_scene))
        assert SOURCES[0][2](body, scene), body

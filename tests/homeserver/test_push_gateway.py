"""The HTTP pusher against a real push gateway on a loopback port: notifications for
events the push rules say to notify about, retries after failures, rejected pushkeys."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from homeserver.services import push_gateway
from tests.homeserver.room_helpers import create_room
from tests.support.server import RunningServer, free_port, serve_homeserver
from tests.support.test_ca import TestCA


class Gateway:
    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.fail_next = 0
        self.rejected: list[str] = []
        self.arrived = asyncio.Event()

    async def notify(self, request: Request) -> JSONResponse:
        body = await request.json()
        if self.fail_next > 0:
            self.fail_next -= 1
            return JSONResponse({"error": "try later"}, status_code=503)
        self.received.append(body)
        self.arrived.set()
        return JSONResponse({"rejected": self.rejected})


@contextlib.asynccontextmanager
async def running_gateway(tls: tuple[str, str] | None = None) -> AsyncIterator[tuple[Gateway, str]]:
    """A push gateway on a loopback port; ``tls``: its certificate and key files (HTTPS)."""
    gateway = Gateway()
    app = Starlette(routes=[Route("/_matrix/push/v1/notify", gateway.notify, methods=["POST"])])
    port = free_port()
    config = HypercornConfig()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    config.errorlog = None
    if tls is not None:
        config.certfile, config.keyfile = tls
    stop = asyncio.Event()
    task = asyncio.create_task(serve(app, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(1500):  # until it accepts connections
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            break
        except OSError:
            await asyncio.sleep(0.02)
    try:
        scheme = "https" if tls is not None else "http"
        yield gateway, f"{scheme}://127.0.0.1:{port}/_matrix/push/v1/notify"
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)


async def test_notifications_retries_and_rejections(server: RunningServer, monkeypatch: Any) -> None:
    monkeypatch.setattr(push_gateway, "FIRST_RETRY_S", 0.01)
    async with running_gateway() as (gateway, url):
        alice = await server.register()
        bob = await server.register()
        room = await create_room(server, alice, preset="public_chat")
        await server.api("POST", f"join/{quote(room)}", bob, json={})
        pusher = {"pushkey": "alice-key", "kind": "http", "app_id": "org.example.app",
                  "app_display_name": "App", "device_display_name": "Phone", "lang": "en",
                  "data": {"url": url, "extra": "kept"}}
        assert (await server.api("POST", "pushers/set", alice, json=pusher)).status_code == 200

        # Alice's own message and a notice (suppressed by default) are not pushed.
        await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/a1", alice,
                         json={"msgtype": "m.text", "body": "mine"})
        await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/b1", bob,
                         json={"msgtype": "m.notice", "body": "bot"})
        gateway.fail_next = 2  # two failures, then the retry gets through
        sent = await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/b2", bob,
                                json={"msgtype": "m.text", "body": "hello alice"})
        event_id = sent.json()["event_id"]
        await server.hs.services.push_gateway.drain()
        assert len(gateway.received) == 1
        note = gateway.received[0]["notification"]
        assert note["event_id"] == event_id and note["room_id"] == room
        assert note["type"] == "m.room.message" and note["sender"] == bob.user_id
        assert note["content"]["body"] == "hello alice"
        assert note["counts"]["unread"] >= 1
        device = note["devices"][0]
        assert device["pushkey"] == "alice-key" and device["data"] == {"extra": "kept"}
        assert device["tweaks"] == {"sound": "default"}  # .m.rule.room_one_to_one: two members


async def test_rejected_pushkeys_are_removed(server: RunningServer) -> None:
    async with running_gateway() as (gateway, url):
        alice = await server.register()
        bob = await server.register()
        room = await create_room(server, alice, preset="public_chat")
        await server.api("POST", f"join/{quote(room)}", bob, json={})
        pusher = {"pushkey": "stale-key", "kind": "http", "app_id": "org.example.app",
                  "app_display_name": "App", "device_display_name": "Phone", "lang": "en",
                  "data": {"url": url, "format": "event_id_only"}}
        await server.api("POST", "pushers/set", alice, json=pusher)
        gateway.rejected = ["stale-key"]
        await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/r1", bob,
                         json={"msgtype": "m.text", "body": "anyone?"})
        await server.hs.services.push_gateway.drain()
        assert len(gateway.received) == 1
        assert "content" not in gateway.received[0]["notification"]  # event_id_only
        assert (await server.api("GET", "pushers", alice)).json() == {"pushers": []}


async def test_pushes_name_the_room_the_alias_and_the_sender(server: RunningServer) -> None:
    async with running_gateway() as (gateway, url):
        alice = await server.register()
        bob = await server.register()
        await server.api("PUT", f"profile/{bob.user_id}/displayname", bob, json={"displayname": "Bobby"})
        room = await create_room(server, bob, preset="public_chat", room_alias_name="pushy")
        alias = f"#pushy:{server.config.server_name}"
        await server.api("POST", f"join/{quote(room)}", alice, json={})
        pusher = {"pushkey": "k", "kind": "http", "app_id": "org.example.app", "app_display_name": "App",
                  "device_display_name": "Phone", "lang": "en", "data": {"url": url}}
        assert (await server.api("POST", "pushers/set", alice, json=pusher)).status_code == 200

        await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/n1", bob,
                         json={"msgtype": "m.text", "body": "named by alias"})
        await server.hs.services.push_gateway.drain()
        note = gateway.received[-1]["notification"]
        # No m.room.name yet: the canonical alias names the room.
        assert note["room_name"] == alias and note["room_alias"] == alias
        assert note["sender_display_name"] == "Bobby" and note["id"] == note["event_id"]
        # pushkey_ts: when the pusher was set, in seconds.
        assert abs(note["devices"][0]["pushkey_ts"] - time.time()) < 3600
        assert "membership" not in note and "user_is_target" not in note

        await server.api("PUT", f"rooms/{quote(room)}/state/m.room.name/", bob, json={"name": "The Room"})
        await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/n2", bob,
                         json={"msgtype": "m.text", "body": "named"})
        await server.hs.services.push_gateway.drain()
        assert gateway.received[-1]["notification"]["room_name"] == "The Room"

        # Reading clears the badge: a push with only counts and devices.
        before = len(gateway.received)
        last = (await server.api("GET", f"rooms/{quote(room)}/messages", alice, params={"dir": "b", "limit": 1}))
        last_id = last.json()["chunk"][0]["event_id"]
        assert (await server.api("POST", f"rooms/{quote(room)}/receipt/m.read/{last_id}", alice,
                                 json={})).status_code == 200
        await server.hs.services.push_gateway.drain()
        badge = gateway.received[before:]
        assert [b["notification"]["counts"] for b in badge] == [{"unread": 0}]
        assert "event_id" not in badge[0]["notification"] and badge[0]["notification"]["devices"][0]["pushkey"] == "k"

        # An invitation: the push says whom it is for.
        carol = await server.register()
        pusher["pushkey"] = "carol"
        assert (await server.api("POST", "pushers/set", carol, json=pusher)).status_code == 200
        other = await create_room(server, bob)
        assert (await server.api("POST", f"rooms/{quote(other)}/invite", bob,
                                 json={"user_id": carol.user_id})).status_code == 200
        await server.hs.services.push_gateway.drain()
        invite = [n["notification"] for n in gateway.received if n["notification"].get("room_id") == other]
        assert invite and invite[-1]["membership"] == "invite" and invite[-1]["user_is_target"] is True


async def test_a_gateway_with_a_private_ca_is_reached_when_push_trusts_it(make_config: Any, tmp_path: Path,
                                                                           monkeypatch: Any) -> None:
    """``[push] gateway_ca_file``: the pusher verifies an HTTPS gateway against that CA too
    (and, without it, refuses the unknown certificate: nothing arrives)."""
    monkeypatch.setattr(push_gateway, "FIRST_RETRY_S", 0.01)
    ca = TestCA.create(tmp_path / "ca")
    for trusted in (False, True):
        config = make_config(push={"gateway_ca_file": ca.ca_file} if trusted else {})
        # The server (and its connections to the gateway) ends first.
        async with running_gateway(ca.issue("127.0.0.1")) as (gateway, url), serve_homeserver(config) as server:
            alice = await server.register()
            bob = await server.register()
            room = await create_room(server, alice, preset="public_chat")
            await server.api("POST", f"join/{quote(room)}", bob, json={})
            pusher = {"pushkey": "tls-key", "kind": "http", "app_id": "org.example.app",
                      "app_display_name": "App", "device_display_name": "Phone", "lang": "en",
                      "data": {"url": url}}
            assert (await server.api("POST", "pushers/set", alice, json=pusher)).status_code == 200
            await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/t1", bob,
                             json={"msgtype": "m.text", "body": "over tls"})
            await server.hs.services.push_gateway.drain()
            bodies = [r["notification"].get("content", {}).get("body") for r in gateway.received]
            assert bodies == (["over tls"] if trusted else [])

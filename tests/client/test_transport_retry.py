"""Connections killed under requests: the client retries and the server applies each once.

A TCP proxy between client and server (``dropping_proxy``) drops the first
attempt of chosen requests, the way a kept-alive connection that the server
closes dies under a request the client just wrote.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from hypercorn.config import Config as HypercornConfig
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from client_tk.core.account import register
from client_tk.core.client import ChatClient
from client_tk.core.transport import CLIENT_V3, MEDIA_V3, Transport, TransportFailure
from common.errors import MatrixError
from homeserver.serving import serve_bounded
from tests.client.conftest import PASSWORD, options
from tests.client.dropping_proxy import DroppingProxy
from tests.support.server import RunningServer, free_port


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[DroppingProxy]:
    url = urlsplit(server.base_url)
    assert url.hostname is not None and url.port is not None
    running = DroppingProxy(url.hostname, url.port)
    await running.start()
    yield running
    await running.close()


async def test_posts_survive_a_killed_connection(server: RunningServer, proxy: DroppingProxy,
                                                 tmp_path: Path) -> None:
    proxy.kill(lambda method, path: method == "POST" and path.endswith("/register"))
    proxy.kill(lambda method, path: method == "POST" and path.endswith("/createRoom"))
    proxy.kill(lambda method, path: method == "POST" and "/upload" in path)
    username = f"retry{secrets.token_hex(3)}"
    client: ChatClient = await register(options(proxy.base_url, tmp_path / "a"), username, PASSWORD)
    try:
        assert ("drop", "POST", "/_matrix/client/v3/register") in proxy.killed
        assert len(await client.list_devices()) == 1  # one registration, one device

        room_id = await client.create_group("Retried", [])
        assert [k for k in proxy.killed if k[2].endswith("/createRoom")]
        joined = await client.http.get(CLIENT_V3 + "/joined_rooms")
        assert joined["joined_rooms"] == [room_id]  # exactly one room was created

        uri = await client.upload_media(b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4000), "image/png")
        assert [k for k in proxy.killed if "/upload" in k[2]]
        assert uri.startswith("mxc://")
        with server.hs.database.activated():
            rows = await server.hs.database.fetch("SELECT media_id FROM media WHERE uploader = ?",
                                                  (client.user_id,))
        assert len(rows) == 1 and uri.endswith("/" + str(rows[0]["media_id"]))
        assert len(proxy.killed) == 3 and all(rule.left == 0 for rule in proxy.rules)
    finally:
        await client.close()


async def test_posts_whose_answer_was_lost_are_applied_once(server: RunningServer, proxy: DroppingProxy,
                                                            tmp_path: Path) -> None:
    """The server acted, the answer died on the way: the repeat (same Idempotency-Key) gets it."""
    # The second /register is the one that creates the account (the first starts UIA).
    proxy.kill(lambda method, path: method == "POST" and path.endswith("/register"), "lose_answer", skip=1)
    proxy.kill(lambda method, path: method == "POST" and path.endswith("/createRoom"), "lose_answer")
    proxy.kill(lambda method, path: method == "POST" and path.startswith(MEDIA_V3 + "/upload"), "lose_answer")
    client = await register(options(proxy.base_url, tmp_path / "a"), f"l{secrets.token_hex(3)}", PASSWORD)
    try:
        room_id = await client.create_group("Lost answer", [])
        uri = await client.upload_media(b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(4000), "image/png")
        assert sorted(k[2].rsplit("/", 1)[1] for k in proxy.killed) == ["createRoom", "register", "upload"]
        assert all(k[0] == "lose_answer" for k in proxy.killed) and all(r.left == 0 for r in proxy.rules)
        for name in ("/client/v3/register", "/createRoom", "/media/v3/upload"):
            keys = [k for (m, p), k in zip(proxy.seen, proxy.idempotency_keys, strict=True)
                    if m == "POST" and p.split("?")[0].endswith(name)]
            assert len(keys) >= 2 and keys[-2] == keys[-1] and keys[-1], name  # the repeat carried the first one's key

        with server.hs.database.activated():
            db = server.hs.database
            users = await db.fetch("SELECT user_id FROM users WHERE user_id = ?", (client.user_id,))
            devices = await db.fetch("SELECT device_id FROM devices WHERE user_id = ?", (client.user_id,))
            rooms = await db.fetch("SELECT room_id FROM rooms WHERE creator = ?", (client.user_id,))
            media = await db.fetch("SELECT media_id FROM media WHERE uploader = ?", (client.user_id,))
        assert len(users) == 1 and [d["device_id"] for d in devices] == [client.device_id]
        assert [r["room_id"] for r in rooms] == [room_id]  # one room, the one the client knows
        assert len(media) == 1 and uri.endswith("/" + str(media[0]["media_id"]))
        assert (await client.http.get(CLIENT_V3 + "/joined_rooms"))["joined_rooms"] == [room_id]
    finally:
        await client.close()


async def test_a_send_whose_answer_was_lost_is_applied_once(server: RunningServer, proxy: DroppingProxy,
                                                           tmp_path: Path) -> None:
    client = await register(options(proxy.base_url, tmp_path / "a"), f"s{secrets.token_hex(3)}", PASSWORD)
    try:
        room_id = await client.create_group("Once", [])
        proxy.kill(lambda method, path: method == "PUT" and "/send/m.room.encrypted/" in path,
                   mode="lose_answer")
        event_id = await client.send_text(room_id, "exactly once")
        assert [k for k in proxy.killed if k[0] == "lose_answer"]  # the server applied the first try
        sent = [p for m, p in proxy.seen if m == "PUT" and "/send/m.room.encrypted/" in p]
        assert len(sent) == 2 and sent[0] == sent[1]  # retried with the same transaction id
        page = await client.http.get(f"{CLIENT_V3}/rooms/{room_id}/messages", params={"dir": "b"})
        encrypted = [e["event_id"] for e in page["chunk"] if e["type"] == "m.room.encrypted"]
        assert encrypted == [event_id]
        assert [m.body for m in client.messages(room_id)] == ["exactly once"]
    finally:
        await client.close()


async def test_a_post_is_not_retried_once_its_answer_started(server: RunningServer, proxy: DroppingProxy,
                                                            tmp_path: Path) -> None:
    """After the server began to answer, a non-idempotent request is not sent again."""
    client = await register(options(proxy.base_url, tmp_path / "a"), f"n{secrets.token_hex(3)}", PASSWORD)
    try:
        proxy.kill(lambda method, path: method == "POST" and path.endswith("/createRoom"),
                   mode="cut_answer")
        with pytest.raises(TransportFailure):
            await client.http.post(CLIENT_V3 + "/createRoom", {"preset": "private_chat"})
        assert [p for m, p in proxy.seen if p.endswith("/createRoom")] == [CLIENT_V3 + "/createRoom"]
    finally:
        await client.close()


async def test_requests_carry_one_idempotency_key_across_attempts(server: RunningServer,
                                                                   proxy: DroppingProxy) -> None:
    proxy.kill(lambda method, path: path.endswith("/versions") and method == "POST", times=2)
    http = Transport(proxy.base_url)
    try:
        # POST /versions is not an endpoint: what matters is that the third attempt reached it.
        with pytest.raises(Exception) as caught:
            await http.post("/_matrix/client/versions", {})
        assert not isinstance(caught.value, TransportFailure)
        assert [p for m, p in proxy.seen if m == "POST"] == ["/_matrix/client/versions"] * 3
        keys = [k for (m, _), k in zip(proxy.seen, proxy.idempotency_keys, strict=True) if m == "POST"]
        assert keys[0] and keys == [keys[0]] * 3
    finally:
        await http.aclose()


async def test_a_post_whose_first_attempt_still_runs_is_asked_again() -> None:
    """409 with ``retry_after_ms`` (the server still runs the first attempt under this key): ask again.

    A tiny server stands in for one whose first attempt is slow; a 409 without
    the hint (a real conflict) is not repeated.
    """
    keys: list[str | None] = []

    async def busy_twice(request: Request) -> Response:
        await request.body()
        keys.append(request.headers.get("idempotency-key"))
        if len(keys) < 3:
            return JSONResponse({"errcode": "M_UNKNOWN", "error": "in flight", "retry_after_ms": 10}, 409)
        return JSONResponse({"room_id": "!once:x"})

    async def conflict(request: Request) -> Response:
        await request.body()
        keys.append(request.headers.get("idempotency-key"))
        return JSONResponse({"errcode": "M_UNKNOWN", "error": "conflict"}, 409)

    app = Starlette(routes=[Route(CLIENT_V3 + "/createRoom", busy_twice, methods=["POST"]),
                            Route(CLIENT_V3 + "/conflict", conflict, methods=["POST"])])
    config = HypercornConfig()
    port = free_port()
    config.bind = [f"127.0.0.1:{port}"]
    config.errorlog = config.accesslog = None
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_bounded(app, config, stop.wait))
    http = Transport(f"http://127.0.0.1:{port}")
    try:
        while True:  # until it listens
            try:
                await http.get("/")
            except MatrixError:
                break
            except TransportFailure:
                assert not serving.done()
                await asyncio.sleep(0.05)
        assert await http.post(CLIENT_V3 + "/createRoom", {}) == {"room_id": "!once:x"}
        assert len(keys) == 3 and keys[0] and keys == [keys[0]] * 3
        with pytest.raises(MatrixError) as refused:
            await http.post(CLIENT_V3 + "/conflict", {})
        assert refused.value.status == 409 and len(keys) == 4
    finally:
        await http.aclose()
        stop.set()
        await serving

"""Request bodies cannot hold a connection: slow bodies time out, unread bodies are drained."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.server import serve_homeserver


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:] if ln)}
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return status, headers, body


async def test_a_body_that_stops_arriving_gets_408_and_the_connection_closes(make_config: Any) -> None:
    async with serve_homeserver(make_config(limits={"body_idle_timeout_ms": 300})) as server:
        port = int(server.base_url.rsplit(":", 1)[1])
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            # Half a body of a declared 100 bytes, then silence.
            writer.write(b"POST /_matrix/client/v3/login HTTP/1.1\r\nHost: x\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"type\":")
            await writer.drain()
            status, headers, body = await asyncio.wait_for(_read_response(reader), 30)
            assert status == 408, body
            assert b'"errcode":"M_UNKNOWN"' in body
            assert headers.get("connection") == "close"
            assert await asyncio.wait_for(reader.read(), 30) == b""  # closed by the server
        finally:
            writer.close()


async def test_a_request_answered_before_its_body_was_read_leaves_the_connection_usable(
    make_config: Any,
) -> None:
    """An upload refused at once (unknown token) with a body of several hundred kB behind it.

    Before the guard the connection's reader blocked on the unread body and the
    next request on that keep-alive connection never got an answer.
    """
    async with serve_homeserver(make_config()) as server:
        body = b"x" * 600_000
        for _ in range(3):
            refused = await server.client.post(
                "/_matrix/media/v3/upload", content=body,
                headers={"Authorization": "Bearer nope", "Content-Type": "application/octet-stream"},
                timeout=20,
            )
            assert refused.status_code == 401
            assert refused.json()["errcode"] == "M_UNKNOWN_TOKEN"
        versions = await server.client.get("/_matrix/client/versions", timeout=20)
        assert versions.status_code == 200

"""Downloads that end early leave no broken connection behind.

httpcore does not reset an HTTP/2 stream whose response is closed before its
end, nor credit back the flow-control window for the data still arriving on
it.  A download stopped part-way (a sink that refuses more, a cancelled
transfer) must therefore not leave the next download stalled behind that
connection's exhausted window: the resume of a cancelled download came in on
exactly such a connection and hung until its read timeout (120 s).  Before the
fix this test hung in the third download the same way.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from pathlib import Path

import httpx
import pytest

from client_tk.core.account import register
from client_tk.core.download_clients import DownloadClients
from tests.client.conftest import PASSWORD, options
from tests.support.server import RunningServer

SIZE = 12 * 1024 * 1024 + 12345


class Enough(Exception):
    """The sink has had what it wanted."""


async def test_a_download_stopped_part_way_does_not_stall_the_next(server: RunningServer,
                                                                   tmp_path: Path) -> None:
    client = await register(options(server.base_url, tmp_path / "a"), f"dl{secrets.token_hex(3)}", PASSWORD)
    try:
        data = os.urandom(SIZE)
        uri = await client.upload_media(data, "application/octet-stream")
        path = "/_matrix/client/v1/media/download/" + uri.removeprefix("mxc://")
        for _ in range(2):  # each early end leaves ~9 MiB uncredited: two exceed the 16 MiB window
            got = 0

            def stop_after_3_mib(piece: bytes) -> None:
                nonlocal got
                got += len(piece)
                if got >= 3 * 1024 * 1024:
                    raise Enough

            with pytest.raises(Enough):
                await client.http.download(path, stop_after_3_mib)
            assert got < SIZE  # it really stopped part-way: the server still had the rest to send

        for _ in range(2):  # twice: the second reuses the first's connection, which ended cleanly
            sink = bytearray()
            total = await client.http.download(path, sink.extend)
            assert total == SIZE
            assert hashlib.sha256(sink).digest() == hashlib.sha256(data).digest()
    finally:
        await client.close()


async def test_a_retired_connection_closes_only_after_the_downloads_still_on_it() -> None:
    made: list[httpx.AsyncClient] = []

    def make() -> httpx.AsyncClient:
        made.append(httpx.AsyncClient())
        return made[-1]

    clients = DownloadClients(make)
    async with clients.lease() as finished:
        finished.completed()
    async with clients.lease() as running:
        assert running.client is finished.client  # a cleanly ended download hands it back
        async with clients.lease() as stopped:
            assert stopped.client is running.client
        # ``stopped`` ended early: its connection is retired, but ``running`` is still on it
        assert not running.client.is_closed
        async with clients.lease() as fresh:
            assert fresh.client is not running.client
            fresh.completed()
        running.completed()
    assert made[0].is_closed and not made[1].is_closed
    await clients.aclose()
    assert all(client.is_closed for client in made) and len(made) == 2

"""Stream positions: prepared at start-up, allocated inside writers' transactions."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from homeserver.storage.streams import UnknownStream
from tests.homeserver.test_serve import start_server, wait_up, write_config
from tests.support.databases import mysql_database
from tests.support.server import free_port


@pytest.fixture
def fresh_database_url(tmp_path: Path) -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") == "mysql":
        with mysql_database("parley_streams") as url:
            yield url
    else:
        yield f"sqlite://{tmp_path / 'fresh.db'}"


async def test_first_writes_of_a_fresh_server_run_concurrently(fresh_database_url: str, tmp_path: Path) -> None:
    """Concurrent first writes on a new deployment all succeed.  (They once
    deadlocked on MySQL when writers created the stream counter rows inside
    their transactions; the load benchmark caught it, this test did not
    reproduce it reliably — the structural guard is the UnknownStream test.)"""
    port = free_port()
    # Eight registrations from one address: more than the default registration limit.
    proc = start_server(write_config(tmp_path, port, fresh_database_url,
                                     "[rate_limits]\nregister_per_minute = 100\n"))
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(base, proc=proc)
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:
            tokens = []
            for i in range(8):
                response = await client.post("/_matrix/client/v3/register", json={
                    "username": f"first{i}", "password": "long enough pw", "auth": {"type": "m.login.dummy"}})
                tokens.append(response.json()["access_token"])
        clients = [httpx.AsyncClient(base_url=base, timeout=60) for _ in range(16)]
        try:
            responses = await asyncio.gather(*[
                c.post("/_matrix/client/v3/createRoom", json={"preset": "public_chat", "name": f"room {i}"},
                       headers={"Authorization": f"Bearer {tokens[i % 8]}"})
                for i, c in enumerate(clients)])
        finally:
            for c in clients:
                await c.aclose()
        assert [r.status_code for r in responses] == [200] * 16, [r.text for r in responses if r.status_code != 200]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


async def test_unprepared_stream_is_refused(server: Any) -> None:
    db = server.hs.database
    streams = server.hs.services.streams
    with db.activated():
        with pytest.raises(UnknownStream):
            async with db.transaction() as conn:
                await streams.advance(conn, "no_such_stream")
        assert "no_such_stream" not in await streams.current_all()

"""Client fixtures: a real homeserver and ChatClients with their own store folders."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from client_tk.core.account import ClientOptions, register
from client_tk.core.client import ChatClient
from common.crypto import KdfParams
from tests.support.server import RunningServer

FAST_KDF = KdfParams.pbkdf2(iterations=1000)
PASSWORD = "correct horse battery"
MakeClient = Callable[..., Awaitable[ChatClient]]


def options(base_url: str, root: Path, **extra: Any) -> ClientOptions:
    return ClientOptions(base_url=base_url, root=root, kdf=FAST_KDF, allow_weak_kdf=True,
                         sync_timeout_ms=extra.pop("sync_timeout_ms", 5_000), **extra)


@pytest.fixture
async def clients(server: RunningServer, tmp_path: Path) -> AsyncIterator[list[ChatClient]]:
    made: list[ChatClient] = []
    yield made
    for client in made:
        try:
            await client.close()
        except Exception:
            pass


@pytest.fixture
def new_user(server: RunningServer, tmp_path: Path, clients: list[ChatClient]) -> MakeClient:
    async def make(name: str = "u", start: bool = True) -> ChatClient:
        username = f"{name}{secrets.token_hex(3)}"
        root = tmp_path / f"{username}-dev1"
        client = await register(options(server.base_url, root), username, PASSWORD)
        clients.append(client)
        if start:
            client.start()
        return client

    return make


async def until(predicate: Callable[[], Any], limit: float = 60.0, what: str = "condition") -> Any:
    """Poll ``predicate`` until truthy (waiting on real syncs, not a timed assertion)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    while True:
        value = predicate()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.05)


def bodies(client: ChatClient, room_id: str) -> list[str]:
    return [m.body for m in client.messages(room_id)]


class Screens:
    """The user looking at both devices during a pairing: each side's ``confirm`` shows its
    code, waits until the other device shows one, and answers whether the two are equal."""

    def __init__(self) -> None:
        self.codes: dict[str, str] = {}
        self._both = asyncio.Event()

    def side(self, name: str) -> Callable[[str], Awaitable[bool]]:
        async def confirm(code: str) -> bool:
            self.codes[name] = code
            if len(self.codes) == 2:
                self._both.set()
            await self._both.wait()
            return len(set(self.codes.values())) == 1
        return confirm

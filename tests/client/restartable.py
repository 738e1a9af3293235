"""A homeserver on a fixed port that a test can stop and start again while clients run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from homeserver.app import create_app
from homeserver.config import Config
from tests.support.server import free_port


class RestartableServer:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self._stop: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._app: object = None

    async def start(self) -> None:
        app = create_app(self.config)
        hc = HypercornConfig()
        hc.bind = [f"127.0.0.1:{self.port}"]
        hc.keep_alive_max_requests = 1_000_000
        hc.graceful_timeout = 1.0
        hc.errorlog = None
        hc.accesslog = None
        self._stop = asyncio.Event()
        self._app = app
        self._task = asyncio.create_task(serve(app, hc, shutdown_trigger=self._stop.wait))  # type: ignore[arg-type]
        import httpx

        async with httpx.AsyncClient(base_url=self.base_url) as probe:
            for _ in range(500):
                if self._task.done():
                    self._task.result()
                try:
                    await probe.get("/_matrix/client/versions")
                    return
                except httpx.TransportError:
                    await asyncio.sleep(0.02)
        raise RuntimeError("homeserver did not come up")

    async def stop(self) -> None:
        if self._task is None or self._stop is None:
            return
        hs = self._app.state.hs  # type: ignore[attr-defined]
        hs.services.notifier.wake_all()
        self._stop.set()
        await asyncio.wait_for(self._task, 20)
        self._task = None


@contextlib.asynccontextmanager
async def restartable(config: Config) -> AsyncIterator[RestartableServer]:
    server = RestartableServer(config)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()

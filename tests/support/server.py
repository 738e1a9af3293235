"""Real homeservers for tests: the ASGI app served by Hypercorn on a free loopback port."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import ssl
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from hypercorn.config import Config as HypercornConfig

from homeserver.app import Homeserver, create_app
from homeserver.config import Config, load_config
from homeserver.services.clock import Clock
from homeserver.serving import serve_bounded


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_config(
    database_url: str, data_dir: Path, overrides: dict[str, Any] | None = None
) -> Config:
    """A dev-mode config with a unique server name, so tests sharing a database stay apart."""
    base: dict[str, Any] = {
        "server_name": f"t{secrets.token_hex(4)}.localhost",
        "dev_mode": True,
        "data_dir": str(data_dir),
        "database": {"url": database_url},
        "registration": {"open": True, "require_email": False},
        "security": {"password_scrypt_log_n": 10},
        "rate_limits": {
            "register_per_minute": 1000,
            "login_per_minute": 1000,
            "messages_per_minute": 100000,
            # Tests that drain one-time keys on purpose; the limit has its own test.
            "one_time_key_claims_per_hour": 100000,
        },
    }
    merged = _merge(base, overrides or {})
    return load_config(None, environ={}, overrides=merged)


# Not a test, whatever pytest infers from the name when a module imports it.
test_config.__test__ = False  # type: ignore[attr-defined]


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


@dataclass
class Account:
    user_id: str
    device_id: str
    access_token: str
    password: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.access_token}"}


@dataclass
class RunningServer:
    base_url: str
    config: Config
    hs: Homeserver
    client: httpx.AsyncClient
    _counter: int = field(default=0)
    # The ASGI app itself, for in-process requests (e.g. from another client address).
    app: Any = None

    async def register(self, username: str | None = None, password: str = "correct horse 1",
                       **extra: Any) -> Account:
        """Register with m.login.dummy in one call and return the logged-in account."""
        self._counter += 1
        username = username or f"user{self._counter}_{secrets.token_hex(3)}"
        body = {"username": username, "password": password, "auth": {"type": "m.login.dummy"}, **extra}
        response = await self.client.post("/_matrix/client/v3/register", json=body)
        assert response.status_code == 200, response.text
        data = response.json()
        return Account(data["user_id"], data["device_id"], data["access_token"], password)

    async def api(self, method: str, path: str, account: Account | None = None,
                  json: Any = None, **kwargs: Any) -> httpx.Response:
        headers = kwargs.pop("headers", {})
        if account is not None:
            headers.update(account.headers)
        if not path.startswith("/"):
            path = "/_matrix/client/v3/" + path
        return await self.client.request(method, path, json=json, headers=headers, **kwargs)


@contextlib.asynccontextmanager
async def serve_homeserver(config: Config, clock: Clock | None = None, mailer: Any = None,
                           http2: bool = False,
                           before_start: Callable[[Homeserver], None] | None = None,
                           port: int | None = None, tls: tuple[str, str, str] | None = None,
                           wrap: Callable[[Any], Any] | None = None,
                           ) -> AsyncIterator[RunningServer]:
    """Serve ``config`` on a free port (or ``port``); ``before_start`` may adjust the homeserver first.

    ``tls`` = (certificate, key, CA file): serve HTTPS, and the test client trusts that CA only.
    ``wrap``: an ASGI middleware put in front of the app (e.g. to play an older server without an endpoint).
    """
    port = port or free_port()
    app = create_app(config, clock=clock, mailer=mailer)
    if before_start is not None:
        before_start(app.state.hs)
    served = wrap(app) if wrap is not None else app
    hc = HypercornConfig()
    hc.bind = [f"127.0.0.1:{port}"]
    hc.keep_alive_max_requests = 1_000_000
    hc.graceful_timeout = 5.0
    hc.errorlog = None
    hc.accesslog = None
    verify: Any = True
    if tls is not None:
        hc.certfile, hc.keyfile = tls[0], tls[1]
        hc.alpn_protocols = ["h2", "http/1.1"]
        verify = ssl.create_default_context(cafile=tls[2])
    stop = asyncio.Event()
    task = asyncio.create_task(serve_bounded(served, hc, stop.wait))
    base_url = f"{'https' if tls else 'http'}://127.0.0.1:{port}"
    client = httpx.AsyncClient(base_url=base_url, timeout=30.0, http2=http2, http1=not http2, verify=verify)
    try:
        # Up once it answers; start-up (migrations on a loaded MariaDB) may take a while.
        # Giving up silently after a few seconds used to let tests fail with ConnectError.
        deadline = asyncio.get_running_loop().time() + 120
        while True:
            if task.done():
                task.result()
                raise RuntimeError("the test homeserver stopped during start-up")
            try:
                await client.get("/_matrix/client/versions")
                break
            except httpx.TransportError:
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.02)
        yield RunningServer(base_url, config, app.state.hs, client, app=app)
    finally:
        await client.aclose()
        app.state.hs.services.notifier.wake_all()
        stop.set()
        await asyncio.wait_for(task, 15)

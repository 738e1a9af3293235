"""`python -m homeserver` as a real process: start, serve h2c/TLS-h2, shut down gracefully."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
LIVENESS_S = 120


def write_config(tmp_path: Path, port: int, database_url: str, extra: str = "") -> Path:
    path = tmp_path / "homeserver.toml"
    path.write_text(
        f'server_name = "proc.localhost"\ndev_mode = true\ndata_dir = "{tmp_path / "data"}"\n'
        f'[[listeners]]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[database]\nurl = "{database_url}"\n'
        '[registration]\nopen = true\nrequire_email = false\n'
        '[security]\npassword_scrypt_log_n = 14\n' + extra
    )
    return path


def start_server(config: Path) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    env = {k: v for k, v in env.items() if not k.startswith("PARLEY_")}
    return subprocess.Popen(
        [sys.executable, "-m", "homeserver", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


async def wait_up(url: str, verify: bool = True, proc: subprocess.Popen[bytes] | None = None) -> None:
    # A liveness bound, not a speed one: a loaded 2-core machine can take a while.
    deadline = time.monotonic() + 120
    async with httpx.AsyncClient(verify=verify) as client:
        while time.monotonic() < deadline:
            if proc is not None and proc.poll() is not None:
                out = proc.stdout.read().decode() if proc.stdout else ""
                raise AssertionError(f"server exited early:\n{out}")
            try:
                await client.get(url + "/_matrix/client/versions")
                return
            except httpx.TransportError:
                await asyncio.sleep(0.1)
    raise AssertionError("server did not start")


class Collected:
    """A server process's output, read by a thread as it comes (the pipe never fills)."""

    def __init__(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        self._stdout = proc.stdout
        self._lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self._stdout:
            self._lines.append(line.decode(errors="replace"))

    @property
    def text(self) -> str:
        return "".join(self._lines)


def spooled(data_dir: Path) -> list[Path]:
    """The uploads the media service is reading: it spools each to ``<media>/tmp/<random>.part``."""
    return list(data_dir.rglob("*.part")) if data_dir.exists() else []


async def until(condition: Callable[[], bool], what: str, output: Callable[[], str]) -> None:
    """Wait for ``condition`` (a liveness bound for a loaded machine, not a speed one); on failure
    the message shows ``output()``, the server's log so far."""
    for _ in range(int(LIVENESS_S / 0.05)):
        if condition():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"waited {LIVENESS_S} s for {what}:\n{output()}")


async def test_process_serves_and_shuts_down_gracefully(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(write_config(tmp_path, port, f"sqlite://{tmp_path / 'hs.db'}"))
    base = f"http://127.0.0.1:{port}"
    try:
        await wait_up(base, proc=proc)
        async with httpx.AsyncClient(base_url=base, http2=True, http1=False, timeout=30) as client:
            response = await client.post("/_matrix/client/v3/register", json={
                "username": "proc", "password": "long enough pw", "auth": {"type": "m.login.dummy"}})
            assert response.status_code == 200, response.text
            assert response.http_version == "HTTP/2"
            token = response.json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            first = await client.get("/_matrix/client/v3/sync", headers=headers)
            since = first.json()["next_batch"]
            # An open long-poll and a request in flight when SIGTERM arrives
            # are both answered.
            long_poll = asyncio.create_task(client.get(
                "/_matrix/client/v3/sync", headers=headers, params={"since": since, "timeout": 60000}))
            await asyncio.sleep(0.5)
            # The login is in flight for certain: its headers and half its body are
            # sent before SIGTERM, the rest after.  (A request the server has not
            # seen at all may be refused by HTTP/2's GOAWAY, which is correct.)
            body = json.dumps({"type": "m.login.password", "user": "proc",
                               "password": "long enough pw"}).encode()
            signalled = asyncio.Event()
            half_sent = asyncio.Event()

            async def slow_body() -> AsyncIterator[bytes]:
                yield body[:10]
                half_sent.set()
                await signalled.wait()
                yield body[10:]

            login = asyncio.create_task(client.post(
                "/_matrix/client/v3/login", content=slow_body(),
                headers={"Content-Type": "application/json", "Content-Length": str(len(body))}))
            await half_sent.wait()
            await asyncio.sleep(0.3)  # the server reads the stream's first frames
            started = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            await asyncio.sleep(0.05)
            signalled.set()
            result = await login
            assert result.status_code == 200
            polled = await long_poll
            assert polled.status_code == 200
            assert polled.json()["next_batch"]
            # Answered on shutdown, not at its 60 s timeout.
            assert time.monotonic() - started < 30
        assert proc.wait(timeout=20) == 0
        output = proc.stdout.read().decode() if proc.stdout else ""
        assert "shutting down" in output
        # The database and everything else the server wrote is private to it.
        for path in [tmp_path / "hs.db", *(tmp_path / "data").rglob("*")]:
            expected = 0o700 if path.is_dir() else 0o600
            assert path.stat().st_mode & 0o777 == expected, path
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


async def test_tls_with_alpn_h2_in_dev_mode(tmp_path: Path) -> None:
    port = free_port()
    proc = start_server(write_config(tmp_path, port, f"sqlite://{tmp_path / 'hs.db'}", "[tls]\nautogenerate = true\n"))
    base = f"https://127.0.0.1:{port}"
    try:
        await wait_up(base, verify=False, proc=proc)
        async with httpx.AsyncClient(base_url=base, http2=True, verify=False) as client:
            response = await client.get("/_matrix/client/versions")
        assert response.status_code == 200
        assert response.http_version == "HTTP/2"
        async with httpx.AsyncClient(base_url=base, http2=False, verify=False) as client:
            assert (await client.get("/_matrix/client/versions")).http_version == "HTTP/1.1"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)


def test_config_error_exits_with_message(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('server_name = "x"\n[security]\nlog_verification_codes = true\n')
    env: dict[str, Any] = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "homeserver", "--config", str(path)],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "dev_mode" in result.stderr


async def test_sigterm_lets_a_slow_upload_finish_and_cuts_a_stalled_one_after_the_grace_period(
        tmp_path: Path) -> None:
    """Python 3.12+ made Hypercorn wait for every connection; the grace period must still hold."""
    from homeserver.__main__ import hypercorn_config
    from homeserver.config import load_config

    port = free_port()
    config_path = write_config(tmp_path, port, f"sqlite://{tmp_path / 'hs.db'}")
    grace = hypercorn_config(load_config(config_path, environ={})).graceful_timeout
    proc = start_server(config_path)
    base = f"http://127.0.0.1:{port}"
    chunk = b"x" * 16384
    never = asyncio.Event()
    output = Collected(proc)

    async def slow() -> Any:
        yield chunk
        yield chunk
        # SIGTERM once the server is inside both uploads (two spool files open), the
        # rest of this body once it has begun shutting down.
        await until(lambda: len(spooled(tmp_path / "data")) == 2, "both uploads to be spooled", lambda: output.text)
        proc.send_signal(signal.SIGTERM)
        await until(lambda: "shutting down" in output.text, "the server to log its shutdown", lambda: output.text)
        for _ in range(8):
            yield chunk
            await asyncio.sleep(0.05)

    async def stalled() -> Any:
        yield chunk
        await never.wait()

    try:
        await wait_up(base, proc=proc)
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            response = await client.post("/_matrix/client/v3/register", json={
                "username": "up", "password": "long enough pw", "auth": {"type": "m.login.dummy"}})
            headers = {"Authorization": f"Bearer {response.json()['access_token']}",
                       "Content-Type": "application/octet-stream"}
            stuck = asyncio.create_task(client.post("/_matrix/media/v3/upload", content=stalled(),
                                                    headers=headers))
            await until(lambda: len(spooled(tmp_path / "data")) == 1, "the stalled upload to be spooled",
                        lambda: output.text)
            uploaded = await client.post("/_matrix/media/v3/upload", content=slow(), headers=headers)
            assert uploaded.status_code == 200, uploaded.text
            # The stalled upload keeps its connection open; the server still exits.
            status = await asyncio.to_thread(proc.wait, grace + 15)
            assert status == 0
            # Its client is still "sending" (the body never ends): stop it.
            stuck.cancel()
            with contextlib.suppress(asyncio.CancelledError, httpx.HTTPError):
                await stuck
        output.reader.join(10)
        # Hypercorn cancels the stalled request itself (3.11) or our bound does (3.12+).
        assert "stopped" in output.text, output.text
        assert not spooled(tmp_path / "data"), "the cut upload left its spool file"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()

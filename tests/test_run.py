"""`python3 run.py serve` in a real pseudo-terminal: Ctrl-C during an upload stops it gracefully."""

from __future__ import annotations

import asyncio
import os
import pty
import signal
import sys
import threading
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.homeserver.test_serve import spooled, until, wait_up
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[1]
CHUNK = b"\x5a" * 32 * 1024
CHUNKS = 8


class Terminal:
    """A child process on the slave side of a pty, its output collected by a thread."""

    def __init__(self, argv: list[str], cwd: Path, env: dict[str, str]) -> None:
        pid, fd = pty.fork()
        if pid == 0:  # the child: its controlling terminal is the pty
            try:
                os.chdir(cwd)
                os.execve(argv[0], argv, env)
            finally:
                os._exit(127)
        self.pid, self.fd = pid, fd
        self._chunks: list[bytes] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # EIO: the child closed the terminal
                return
            if not data:
                return
            self._chunks.append(data)

    @property
    def output(self) -> str:
        return b"".join(self._chunks).decode(errors="replace")

    def press_ctrl_c(self) -> None:
        os.write(self.fd, b"\x03")  # the line discipline turns it into SIGINT

    def wait(self, timeout: float) -> int:
        """Exit status (negative signal number if killed); kills the child after ``timeout``."""
        deadline_steps = int(timeout / 0.05)
        for _ in range(deadline_steps):
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self._reader.join(5)
                return os.waitstatus_to_exitcode(status)
            threading.Event().wait(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"still running after {timeout} s:\n{self.output}")

    def close(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        os.close(self.fd)


def write_relative_config(folder: Path, port: int) -> None:
    (folder / "my.toml").write_text(
        'server_name = "tty.localhost"\ndev_mode = true\ndata_dir = "state"\n'
        f'[[listeners]]\nhost = "127.0.0.1"\nport = {port}\n'
        '[registration]\nopen = true\nrequire_email = false\n'
        '[security]\npassword_scrypt_log_n = 10\n'
    )


@pytest.mark.skipif(sys.platform == "win32", reason="needs a POSIX pseudo-terminal")
async def test_ctrl_c_during_an_upload_lets_it_complete_then_exits_0(tmp_path: Path) -> None:
    port = free_port()
    write_relative_config(tmp_path, port)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["PARLEY_RUN_PYTHON"] = sys.executable
    # A relative --config, resolved against the caller's folder (tmp_path), not the repository.
    terminal = Terminal([sys.executable, str(ROOT / "run.py"), "serve", "--config", "my.toml"],
                        tmp_path, env)
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_up(base)
        pressed = asyncio.Event()
        state = tmp_path / "state"

        async def slow_body() -> AsyncIterator[bytes]:
            yield CHUNK
            yield CHUNK
            # Ctrl-C once the server is inside this upload (its spool file is open), and
            # the rest of the body only once the server has begun shutting down: the
            # upload is in flight on both sides when the terminal's Ctrl-C arrives.
            await until(lambda: bool(spooled(state)), "the server to open the upload's spool file",
                        lambda: terminal.output)
            terminal.press_ctrl_c()
            pressed.set()
            await until(lambda: "shutting down" in terminal.output, "the server to log its shutdown",
                        lambda: terminal.output)
            for _ in range(CHUNKS - 2):
                yield CHUNK
                await asyncio.sleep(0.05)

        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            registered = await client.post("/_matrix/client/v3/register", json={
                "username": "tty", "password": "long enough pw", "auth": {"type": "m.login.dummy"}})
            assert registered.status_code == 200, registered.text
            token = registered.json()["access_token"]
            uploaded = await client.post(
                "/_matrix/media/v3/upload", content=slow_body(),
                headers={"Authorization": f"Bearer {token}", "Content-Type": "application/octet-stream"})
        assert pressed.is_set()
        assert uploaded.status_code == 200, uploaded.text
        assert uploaded.json()["content_uri"].startswith("mxc://tty.localhost/")

        assert await asyncio.to_thread(terminal.wait, 30) == 0
        output = terminal.output
        assert "shutting down" in output
        assert "Traceback" not in output and "KeyboardInterrupt" not in output, output
        # Each log line once (Hypercorn's own handler used to print its lines twice).
        assert output.count("Running on http://127.0.0.1") == 1, output
        # data_dir = "state" is relative to the folder run.py was started from.
        assert (tmp_path / "state" / "homeserver.db").exists()
        stored = [p for p in (tmp_path / "state").rglob("*") if p.is_file()]
        assert any(p.read_bytes() == CHUNK * CHUNKS for p in stored), stored
        assert not (ROOT / "state").exists()
    finally:
        terminal.close()

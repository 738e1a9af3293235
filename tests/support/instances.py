"""Homeserver instances as real processes (``python -m homeserver``): one deployment, several processes."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class InstanceProcess:
    name: str
    config_path: Path
    port: int
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    env: dict[str, str] = field(default_factory=dict)  # PARLEY_* settings for this instance
    _log: IO[bytes] | None = field(default=None, repr=False)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
        env["PYTHONPATH"] = str(ROOT)
        env.update(self.env)
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "homeserver", "--config", str(self.config_path)],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    async def wait_ready(self, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        async with httpx.AsyncClient(timeout=5) as client:
            while time.monotonic() < deadline:
                if not self.alive:
                    raise AssertionError(f"{self.name} exited:\n{self.log()}")
                try:
                    if (await client.get(self.base_url + "/ready")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"{self.name} never became ready:\n{self.log()}")

    def kill9(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:] if self.log_path.exists() else ""


def write_instance_config(folder: Path, name: str, server_name: str, database_url: str,
                          redis_url: str = "", extra: str = "") -> InstanceProcess:
    """A dev-mode config for one instance of ``server_name`` with its own data folder and port."""
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    path = folder / f"{name}.toml"
    path.write_text(
        f'server_name = "{server_name}"\ndev_mode = true\ninstance_name = "{name}"\n'
        f'data_dir = "{folder / (name + "-data")}"\nredis_url = "{redis_url}"\n{extra}'
        f'[[listeners]]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[database]\nurl = "{database_url}"\npool_max = 10\n'
        '[registration]\nopen = true\nrequire_email = false\n'
        '[security]\npassword_scrypt_log_n = 10\n'
        '[rate_limits]\nregister_per_minute = 100000\nlogin_per_minute = 100000\n'
        'messages_per_minute = 1000000\n'
    )
    return InstanceProcess(name, path, port, folder / f"{name}.log")

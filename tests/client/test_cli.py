"""The command-line client as a subprocess, including a kill -9 mid-conversation."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import signal
import sys
from pathlib import Path
from typing import Any

from client_tk.core.client import ChatClient
from tests.client.conftest import PASSWORD, MakeClient, bodies, until
from tests.support.server import RunningServer

ROOT = Path(__file__).resolve().parents[2]


class Cli:
    def __init__(self, server: RunningServer, home: Path) -> None:
        self.base = [sys.executable, "-m", "client_tk.cli", "--server", server.base_url, "--home", str(home),
                     "--password", PASSWORD, "--dev-kdf-iterations", "1000", "--sync-timeout", "5", "--json"]
        self.env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.user: str | None = None

    def argv(self, *args: str) -> list[str]:
        return [*self.base, *(["--user", self.user] if self.user else []), *args]

    async def run(self, *args: str) -> list[dict[str, Any]]:
        proc = await asyncio.create_subprocess_exec(*self.argv(*args), cwd=ROOT, env=self.env,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, err.decode()
        return [json.loads(line) for line in out.decode().splitlines() if line.strip()]

    async def spawn(self, *args: str) -> Listener:
        proc = await asyncio.create_subprocess_exec(*self.argv(*args), cwd=ROOT, env=self.env,
                                                    stdout=asyncio.subprocess.PIPE,
                                                    stderr=None if os.environ.get("PARLEY_CLI_DEBUG")
                                                    else asyncio.subprocess.DEVNULL)
        return Listener(proc)


class Listener:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(json.loads(line))

    def bodies(self) -> list[str]:
        return [str(x["body"]) for x in self.lines if x.get("event") == "message"]

    async def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        await self.proc.wait()
        await self.task


async def test_cli_subprocess_survives_kill(server: RunningServer, new_user: MakeClient,
                                            tmp_path: Path) -> None:
    bob_cli = Cli(server, tmp_path / "bob-cli")
    name = f"bob{secrets.token_hex(3)}"
    registered = await bob_cli.run("register", name)
    bob_cli.user = registered[0]["user_id"]
    assert (await bob_cli.run("whoami"))[0]["device_id"] == registered[0]["device_id"]

    alice: ChatClient = await new_user("alice")
    room = (await bob_cli.run("dm", alice.user_id))[0]["room_id"]
    await until(lambda: room in alice.rooms, what="alice sees the DM")
    if alice.rooms[room].membership == "invite":
        await alice.accept(room)
    assert room in {r["room_id"] for r in await bob_cli.run("rooms")}

    sent = await bob_cli.run("send", room, "hello from the command line")
    assert sent[0]["event_id"].startswith("$")
    await until(lambda: "hello from the command line" in bodies(alice, room), what="alice reads the CLI")

    listener = await bob_cli.spawn("listen")
    for i in range(3):
        await alice.send_text(room, f"m{i}")
    try:
        await until(lambda: {"m0", "m1", "m2"} <= set(listener.bodies()), what="listener prints")
    except AssertionError:
        await listener.kill()
        raise AssertionError(listener.lines) from None
    # Kill -9 in the middle of the conversation: messages keep coming.
    sends = asyncio.gather(*(alice.send_text(room, f"m{i}") for i in range(3, 8)))
    await asyncio.sleep(0.05)
    await listener.kill()
    await sends
    before_kill = [x for x in listener.lines if x.get("event") == "message"]
    listener = await bob_cli.spawn("listen")
    try:
        # Whatever the killed process had not committed is delivered again, exactly once.
        await until(lambda: {f"m{i}" for i in range(3, 8)} <= set(listener.bodies()) | set(
            m["body"] for m in before_kill), limit=30, what="restarted listener")
    finally:
        await listener.kill()
    cached = [m["body"] for m in await bob_cli.run("read", room)]
    for i in range(8):
        assert cached.count(f"m{i}") == 1, (i, cached)
    # The conversation goes on both ways after the crash.
    await bob_cli.run("send", room, "after the crash", "--reply-to", sent[0]["event_id"])
    await until(lambda: "after the crash" in bodies(alice, room), what="reply after crash")
    await alice.send_text(room, "and back")
    assert "and back" in [m["body"] for m in await bob_cli.run("read", room)]
    found = await bob_cli.run("search", "CRASH")
    assert [m["body"] for m in found] == ["after the crash"]
    assert found[0]["reply_to"] == sent[0]["event_id"]

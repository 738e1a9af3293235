"""The CLI's interactive ``shell``: commands on stdin, answers and live events on stdout."""

from __future__ import annotations

import asyncio
import json
import secrets
from pathlib import Path
from typing import Any

from client_tk.core.client import ChatClient
from tests.client.conftest import MakeClient, bodies, until
from tests.client.test_cli import ROOT, Cli
from tests.support.server import RunningServer


class Shell:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[dict[str, Any]] = []
        self.task = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            self.lines.append(json.loads(line))

    async def say(self, line: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        await self.proc.stdin.drain()

    async def answer(self, line: str, key: str) -> dict[str, Any]:
        """Send a command; wait for the next answer line (not a live event) carrying ``key``."""
        start = len(self.lines)
        await self.say(line)
        found = await until(lambda: next((x for x in self.lines[start:] if key in x and "event" not in x), None),
                            limit=30, what=f"answer to {line!r}: {self.lines[start:]}")
        assert isinstance(found, dict)
        return found

    def messages(self) -> list[str]:
        return [str(x["body"]) for x in self.lines if x.get("event") == "message"]


async def test_cli_shell(server: RunningServer, new_user: MakeClient, tmp_path: Path) -> None:
    cli = Cli(server, tmp_path / "bob-cli")
    registered = await cli.run("register", f"bob{secrets.token_hex(3)}")
    cli.user = registered[0]["user_id"]
    alice: ChatClient = await new_user("alice")

    proc = await asyncio.create_subprocess_exec(*cli.argv("shell"), cwd=ROOT, env=cli.env,
                                                stdin=asyncio.subprocess.PIPE,
                                                stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)
    shell = Shell(proc)
    try:
        me = await shell.answer("whoami", "device_id")
        assert me == {"user_id": cli.user, "device_id": registered[0]["device_id"]}
        room = (await shell.answer(f"dm {alice.user_id}", "room_id"))["room_id"]
        await until(lambda: room in alice.rooms, what="alice is invited")
        await alice.accept(room)
        await until(lambda: alice.rooms[room].membership == "join", what="alice joined")

        sent = await shell.answer(f"send {room} 'hello from the shell'", "event_id")
        await until(lambda: "hello from the shell" in bodies(alice, room), what="alice reads the shell")
        # Events print as they arrive while the shell waits for input.
        await alice.send_text(room, "hello back, shell")
        await until(lambda: "hello back, shell" in shell.messages(), limit=30, what="shell prints the reply")
        await shell.say(f"send {room} 'a reply' --reply-to {sent['event_id']}")
        await until(lambda: "a reply" in bodies(alice, room), what="reply arrives")
        assert [m.reply_to for m in alice.messages(room) if m.body == "a reply"] == [sent["event_id"]]

        rooms = await shell.answer("rooms", "members")
        assert rooms["room_id"] == room and set(rooms["members"]) == {alice.user_id, cli.user}
        found = await shell.answer("search SHELL", "body")
        assert found["body"] in ("hello from the shell", "hello back, shell")

        # Mistakes are reported and the shell goes on.
        assert "error" in await shell.answer("no-such-command", "error")
        assert "error" in await shell.answer("send '!nowhere:nowhere' 'lost'", "error")
        assert "error" in await shell.answer("listen", "error")
        assert "error" in await shell.answer("send 'unbalanced", "error")
        await shell.answer("whoami", "device_id")

        await shell.say("quit")
        assert await asyncio.wait_for(proc.wait(), 30) == 0
        await shell.task
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    assert proc.stderr is not None
    err = (await proc.stderr.read()).decode()
    assert "Traceback" not in err, err

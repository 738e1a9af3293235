"""A 20 MB encrypted file with progress; the server stopped and started under running clients;
then the server's database and media folder hold no plaintext."""

from __future__ import annotations

import asyncio
import os
import secrets
from pathlib import Path
from typing import Any

from client_tk.core.account import register
from client_tk.core.client import ChatClient
from client_tk.core.events import ConnectionState, ConnectionStateChanged, TransferProgress
from tests.client.conftest import PASSWORD, bodies, options, until
from tests.client.plaintext import dump_database, read_tree
from tests.client.restartable import restartable


async def test_file_restart_and_no_plaintext_on_server(make_config: Any, tmp_path: Path) -> None:
    config = make_config()
    async with restartable(config) as server:
        alice = await register(options(server.base_url, tmp_path / "a"), f"alice{secrets.token_hex(3)}", PASSWORD)
        bob = await register(options(server.base_url, tmp_path / "b"), f"bob{secrets.token_hex(3)}", PASSWORD)
        carol = await register(options(server.base_url, tmp_path / "c"), f"carol{secrets.token_hex(3)}", PASSWORD)
        clients: list[ChatClient] = [alice, bob, carol]
        try:
            for c in clients:
                c.start()
            dm = await alice.create_dm(bob.user_id)
            group = await alice.create_group("Secret group", [bob.user_id, carol.user_id])
            for c in (bob, carol):
                for room in ((dm, group) if c is bob else (group,)):
                    await until(lambda c=c, room=room: room in c.rooms, what="room")  # type: ignore[misc]
                    if c.rooms[room].membership == "invite":
                        await c.accept(room)
            await until(lambda: len(alice.rooms[group].joined) == 3, what="group joined")
            secret_words = [f"PLAINTEXT-CANARY-{secrets.token_hex(8)}" for _ in range(4)]
            await alice.send_text(dm, secret_words[0])
            await carol.send_text(group, secret_words[1])

            # 20 MB file, encrypted, with progress both ways.
            source = tmp_path / "big.bin"
            marker = f"FILE-CANARY-{secrets.token_hex(8)}".encode()
            chunk = marker + os.urandom(1024 * 1024 - len(marker))
            source.write_bytes(chunk * 20)
            up: list[tuple[int, int]] = []
            events: list[TransferProgress] = []
            bob.bus.subscribe(lambda e: events.append(e) if isinstance(e, TransferProgress) else None)
            await alice.send_file(dm, source, progress=lambda d, t: up.append((d, t)))
            assert up and up[-1][0] == up[-1][1] >= 20 * 1024 * 1024
            message = await until(lambda: next((m for m in bob.messages(dm) if m.kind == "file"), None),
                                  what="file message")
            down: list[tuple[int, int]] = []
            target = await bob.download_file(message, tmp_path / "received.bin",
                                             progress=lambda d, t: down.append((d, t)))
            assert target.read_bytes() == source.read_bytes()
            assert down and down[-1][0] == down[-1][1] and events

            # The server goes away and comes back; clients reconnect, nothing is lost.
            states: list[ConnectionState] = []
            bob.bus.subscribe(lambda e: states.append(e.state) if isinstance(e, ConnectionStateChanged) else None)
            await server.stop()
            await until(lambda: ConnectionState.RECONNECTING in states, what="bob notices")
            send_while_down = asyncio.create_task(alice.send_text(dm, secret_words[2]))
            await asyncio.sleep(0.5)
            await server.start()
            await send_while_down
            await until(lambda: states[-1] == ConnectionState.CONNECTED, limit=60, what="reconnected")
            await carol.send_text(group, secret_words[3])
            await until(lambda: secret_words[2] in bodies(bob, dm), limit=60, what="sent while down")
            for reader in (alice, bob):
                await until(lambda r=reader: {secret_words[1], secret_words[3]} <= set(bodies(r, group)),  # type: ignore[misc]
                            limit=60, what="group after restart")
            assert bodies(bob, dm).count(secret_words[2]) == 1
        finally:
            for c in clients:
                await c.close()

    dump = await dump_database(config)
    media = await asyncio.to_thread(read_tree, Path(config.media_path))
    assert len(media) >= 20 * 1024 * 1024
    for word in secret_words:
        assert word.encode() not in dump and word.encode() not in media
    assert marker not in dump and marker not in media
    # The clients' own stores are encrypted too.
    for folder in (tmp_path / "a", tmp_path / "b", tmp_path / "c"):
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                assert all(w.encode() not in data for w in secret_words), path
                assert oct(path.stat().st_mode & 0o777) == "0o600", path
            elif path.is_dir():
                assert oct(path.stat().st_mode & 0o777) == "0o700", path

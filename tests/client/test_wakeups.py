"""A client's long-poll is answered by the server's wake-up, not by its timeout.

Bob long-polls for five minutes; the test waits until the server reports his
waiter, then Alice writes.  Bob can only see the message in time if the write
woke his waiting ``/sync``.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from client_tk.core.account import register
from client_tk.core.client import ChatClient
from tests.client.conftest import PASSWORD, MakeClient, bodies, options, until
from tests.support.server import RunningServer

LONG_POLL_MS = 300_000


async def test_a_message_wakes_a_waiting_sync(server: RunningServer, new_user: MakeClient,
                                              clients: list[ChatClient], tmp_path: Path) -> None:
    alice = await new_user("alice")
    bob = await register(options(server.base_url, tmp_path / "bob-long", sync_timeout_ms=LONG_POLL_MS),
                         f"bob{secrets.token_hex(3)}", PASSWORD)
    clients.append(bob)
    room = await alice.create_group("Wake up", [bob.user_id])
    await bob.sync_once(0)
    await bob.accept(room)
    await until(lambda: bob.user_id in alice.rooms[room].joined, what="bob joined")
    await alice.stop()  # from here on, only bob long-polls
    notifier = server.hs.services.notifier
    bob.start()
    await until(lambda: notifier.waiting_users == 1, what="bob's long-poll is waiting on the server")
    await alice.send_text(room, "wake up, bob")
    await until(lambda: "wake up, bob" in bodies(bob, room), limit=30, what="bob woken by the message")
    await until(lambda: notifier.waiting_users == 1, what="bob waits again")

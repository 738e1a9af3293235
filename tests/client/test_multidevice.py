"""Alice and Bob with two devices each: pairing by code, history, DMs in every direction."""

from __future__ import annotations

import asyncio
from pathlib import Path

from client_tk.core.account import approve_pairing, finish_pairing, login, start_pairing
from client_tk.core.client import ChatClient
from tests.client.conftest import PASSWORD, MakeClient, Screens, bodies, options, until
from tests.client.plaintext import assert_server_holds_no_plaintext
from tests.support.server import RunningServer


async def pair(server: RunningServer, old: ChatClient, root: Path) -> ChatClient:
    opts = options(server.base_url, root)
    request = await start_pairing(opts, old.user_id)
    screens = Screens()
    waiting = asyncio.create_task(finish_pairing(opts, request, PASSWORD, confirm=screens.side("new"),
                                                 poll_interval=0.1))
    await approve_pairing(old, request.code, confirm=screens.side("old"))
    new = await waiting
    assert new.user_id == old.user_id and new.device_id != old.device_id
    return new


async def joined_dm(alice: ChatClient, bob: ChatClient) -> str:
    room = await alice.create_dm(bob.user_id)
    await until(lambda: room in bob.rooms, what="bob sees the room")
    if bob.rooms[room].membership == "invite":
        await bob.accept(room)
    await until(lambda: alice.rooms[room].members.get(bob.user_id) == "join", what="bob joined")
    return room


async def test_two_devices_each_history_out_of_order_and_restart(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await joined_dm(alice, bob)
    await alice.send_text(room, "before any second device")
    await until(lambda: "before any second device" in bodies(bob, room), what="first message")

    # A new device paired by code reads the old history (the history archive sent at pairing).
    alice2 = await pair(server, alice, tmp_path / "alice-dev2")
    clients.append(alice2)
    bob2 = await pair(server, bob, tmp_path / "bob-dev2")
    clients.append(bob2)
    for device in (alice2, bob2):
        device.start()
        await until(lambda d=device: room in d.rooms, what="room on the new device")  # type: ignore[misc]
        await device.load_history(room)
        assert "before any second device" in bodies(device, room)

    # Every device reads every message, whoever sends it, from any device.
    everyone = [alice, alice2, bob, bob2]
    for sender, text in ((alice, "a1"), (bob2, "b2"), (alice2, "a2"), (bob, "b1")):
        await sender.send_text(room, text)
        for reader in everyone:
            await until(lambda r=reader, t=text: t in bodies(r, room),  # type: ignore[misc]
                        what=f"{text} from {sender.device_id} on {reader.device_id}")

    # Out of order: all four devices send at once before anyone has synced.
    texts = [f"burst {i} from {c.device_id}" for i, c in enumerate(everyone)]
    await asyncio.gather(*(c.send_text(room, t) for c, t in zip(everyone, texts, strict=True)))
    for reader in everyone:
        await until(lambda r=reader: all(t in bodies(r, room) for t in texts), what="burst")  # type: ignore[misc]

    # Across a restart: Bob's first device stops, messages arrive meanwhile, it comes back.
    await bob.close()
    clients.remove(bob)
    await alice.send_text(room, "while bob was away")
    bob_again = await login(options(server.base_url, bob.store.folder.parent), bob.user_id, PASSWORD)
    clients.append(bob_again)
    assert bob_again.device_id == bob.device_id
    bob_again.start()
    await until(lambda: "while bob was away" in bodies(bob_again, room), what="after restart")
    await bob_again.send_text(room, "back again")
    for reader in (alice, alice2, bob2):
        await until(lambda r=reader: "back again" in bodies(r, room), what="reply after restart")  # type: ignore[misc]
    # Pairing payloads, the history archive and every message stayed opaque to the server.
    await assert_server_holds_no_plaintext(
        server.config, ["before any second device", *texts, "while bob was away"])

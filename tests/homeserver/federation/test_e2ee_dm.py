"""An end-to-end encrypted direct chat between users of two servers, through the client core.

Each user has two devices.  Device keys, one-time keys and the encrypted to-device
messages cross the servers over federation (keys/query, keys/claim, m.direct_to_device);
the messages stay ciphertext on both servers.
"""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from client_tk.core.account import ClientOptions, approve_pairing, finish_pairing, register, start_pairing
from client_tk.core.client import ChatClient
from tests.client.conftest import PASSWORD, Screens, bodies, options, until
from tests.client.plaintext import assert_server_holds_no_plaintext
from tests.support.federation import Cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


async def test_an_encrypted_dm_across_two_servers_with_two_devices_each(pair: Cluster, tmp_path: Path) -> None:
    made: list[ChatClient] = []

    def opts(server: str, folder: str) -> ClientOptions:
        return options(pair.running[server].base_url, tmp_path / folder, ca_file=pair.ca.ca_file)

    async def second_device(server: str, folder: str, old: ChatClient) -> ChatClient:
        new_opts = opts(server, folder)
        request = await start_pairing(new_opts, old.user_id)
        screens = Screens()
        waiting = asyncio.create_task(finish_pairing(new_opts, request, PASSWORD, confirm=screens.side("new"),
                                                     poll_interval=0.1))
        await approve_pairing(old, request.code, confirm=screens.side("old"))
        return await waiting

    try:
        alice = await register(opts(H1, "alice1"), f"alice{secrets.token_hex(2)}", PASSWORD)
        made.append(alice)
        bob = await register(opts(H2, "bob1"), f"bob{secrets.token_hex(2)}", PASSWORD)
        made.append(bob)
        for client in (alice, bob):
            client.start()
        alice2 = await second_device(H1, "alice2", alice)
        made.append(alice2)
        bob2 = await second_device(H2, "bob2", bob)
        made.append(bob2)
        for client in (alice2, bob2):
            client.start()
        room = await alice.create_dm(bob.user_id)
        await until(lambda: room in bob.rooms, what="bob sees the room")
        if bob.rooms[room].membership == "invite":
            await bob.accept(room)
        await until(lambda: alice.rooms[room].members.get(bob.user_id) == "join", what="bob joined")
        await alice.send_text(room, "hello bob, from hs1")
        for reader in (bob, bob2, alice2):
            await until(lambda r=reader: "hello bob, from hs1" in bodies(r, room), what="read on every device")
        await bob2.send_text(room, "hi alice, from hs2")
        for reader in (alice, alice2, bob):
            await until(lambda r=reader: "hi alice, from hs2" in bodies(r, room), what="the answer everywhere")
        # Ciphertext only on both servers: no table of either holds the words.
        for server in (H1, H2):
            await assert_server_holds_no_plaintext(pair.running[server].config,
                                                   ["hello bob, from hs1", "hi alice, from hs2"])
    finally:
        for client in made:
            try:
                await client.close()
            except Exception:
                pass

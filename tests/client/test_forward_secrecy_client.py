"""Forward secrecy of the real client, over a real server (issue 15, Done-when bullet 1).

The attacker gets *everything Bob's device stores* -- its store file and its
password (identity key, signed and one-time pre-keys, every pairwise session,
every sender key, the access token, the backup secret if any) -- but not the
plaintext message cache (that is the history the user chose to keep; deleting
it is the user's call), and everything the server stores: every room event
(``/messages``).  From that, with the key backup off, nothing sent or received
before the compromise opens.  With the backup on, every message Bob *received*
opens (its key sits in the backup under the stolen secret); what Bob sent does
not (the sending device keeps no key for it).
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from client_tk.core.account import login
from client_tk.core.client import ChatClient
from client_tk.core.store import account_dir_name
from client_tk.core.transport import q
from tests.client.conftest import PASSWORD, MakeClient, bodies, options, until
from tests.client.test_multidevice import joined_dm
from tests.support.server import RunningServer

ALICE_SAYS = ["a1 before the first reply", "a2", "a3 after b1", "a4 after b2", "a5 last"]
BOB_SAYS = ["b1 first reply", "b2 second reply"]


async def _conversation(alice: ChatClient, bob: ChatClient, room: str) -> None:
    """Several ratchet steps both ways; everyone reads everything."""
    script = [(alice, ALICE_SAYS[0]), (alice, ALICE_SAYS[1]), (bob, BOB_SAYS[0]),
              (alice, ALICE_SAYS[2]), (bob, BOB_SAYS[1]), (alice, ALICE_SAYS[3]), (alice, ALICE_SAYS[4])]
    for sender, text in script:
        await sender.send_text(room, text)
        for reader in (alice, bob):
            await until(lambda r=reader, t=text: t in bodies(r, room), what=text)  # type: ignore[misc]


async def _steal(server: RunningServer, bob: ChatClient, thief_root: Path,
                 clients: list[ChatClient]) -> ChatClient:
    """Copy Bob's whole store (he stops first, so it is consistent), drop the plaintext cache."""
    await bob.stop()
    source = bob.store.folder
    dest = thief_root / account_dir_name(bob.user_id)
    shutil.copytree(source, dest)
    db = sqlite3.connect(dest / "store.db")
    db.execute("DELETE FROM messages")
    db.commit()
    db.close()
    thief = await login(options(server.base_url, thief_root), bob.user_id, PASSWORD)
    clients.append(thief)
    assert thief.device_id == bob.device_id  # the same device, keys and token: a full compromise
    assert bodies(thief, next(iter(thief.rooms))) == []
    return thief


async def test_stolen_device_state_opens_nothing_from_before_with_backup_off(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    assert not bob.backup.enabled and not alice.backup.enabled  # off by default
    room = await joined_dm(alice, bob)
    await _conversation(alice, bob, room)
    thief = await _steal(server, bob, tmp_path / "thief", clients)
    opened = await thief.load_history(room)  # every event the server holds, through Bob's keys
    assert opened == 0
    assert bodies(thief, room) == []
    # The server did hold them all (the ratchet refuses the used-up keys as duplicates).
    page = await thief.http.get(f"/_matrix/client/v3/rooms/{q(room)}/messages", params={"dir": "b", "limit": 100})
    held = [e for e in page["chunk"] if e.get("type") == "m.room.encrypted"]
    assert len(held) == len(ALICE_SAYS) + len(BOB_SAYS)


async def test_with_backup_on_the_stolen_secret_opens_every_received_message(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    recovery_key = await bob.backup.enable()
    assert len(recovery_key.replace(" ", "")) == 56  # what the user writes down
    room = await joined_dm(alice, bob)
    await _conversation(alice, bob, room)
    await until(lambda: not bob.store.items("backup_queue"), what="bob's backup uploaded")
    thief = await _steal(server, bob, tmp_path / "thief", clients)
    assert await thief.backup.restore() == len(ALICE_SAYS)
    await thief.load_history(room)
    # Everything Bob received opens; what he sent does not (no key of it was kept anywhere).
    assert sorted(bodies(thief, room)) == sorted(ALICE_SAYS)

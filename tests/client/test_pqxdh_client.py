"""PQXDH between two real clients over a real server, and no downgrade (issue 15).

Both clients publish signed ML-KEM-1024 pre-keys and advertise PQXDH; the first
message of a session is a PQXDH pre-key message on the wire (what the server
stores says so), and the one-time KEM key it used is gone from both the server
and the recipient.  A server that withholds the KEM keys of a device that
advertises PQXDH (it deletes them) does not get an X3DH session instead: the
sender starts no session with that device, encrypts nothing to it, and marks the
device as not reached on her copy of the message.
"""

from __future__ import annotations

from pathlib import Path

from client_tk.core.client import ChatClient
from client_tk.core.kem_keys import KEM_TARGET
from client_tk.core.transport import q
from common.crypto import PreKeyMessage, decode_message
from common.crypto.kem_prekeys import KEM_KEY_ALGORITHM
from common.crypto.pqxdh import PQXDH_ALGORITHM, PQXDHHeader
from tests.client.conftest import MakeClient, bodies, until
from tests.client.test_multidevice import joined_dm
from tests.support.server import RunningServer


async def first_ciphertext(reader: ChatClient, room: str, sender: str, device_key: str) -> object:
    page = await reader.http.get(f"/_matrix/client/v3/rooms/{q(room)}/messages", params={"dir": "f"})
    event = next(e for e in page["chunk"] if e.get("type") == "m.room.encrypted" and e["sender"] == sender)
    return decode_message(event["content"]["ciphertext"][device_key])


async def test_clients_build_pqxdh_sessions_and_use_up_one_time_kem_keys(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    assert PQXDH_ALGORITHM in bob.keys.device_keys()["algorithms"]
    assert len(bob.keys.kem.one_time) == KEM_TARGET and bob.keys.kem.last_resort is not None
    room = await joined_dm(alice, bob)
    await alice.send_text(room, "post-quantum hello")
    await until(lambda: "post-quantum hello" in bodies(bob, room), what="bob reads")
    await bob.send_text(room, "post-quantum answer")
    await until(lambda: "post-quantum answer" in bodies(alice, room), what="alice reads")
    wire = await first_ciphertext(bob, room, alice.user_id, f"{bob.user_id}|{bob.device_id}")
    assert isinstance(wire, PreKeyMessage) and isinstance(wire.x3dh, PQXDHHeader)
    assert not wire.x3dh.kem_last_resort
    assert wire.x3dh.kem_prekey_id not in bob.keys.kem.one_time  # used once, deleted
    counts = (await bob.http.get("/_matrix/client/v3/sync", params={"timeout": 0}))
    assert counts["device_one_time_keys_count"][KEM_KEY_ALGORITHM] == KEM_TARGET - 1


async def test_withheld_kem_keys_do_not_yield_an_x3dh_session(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await joined_dm(alice, bob)
    db = server.hs.database
    with db.activated():  # the malicious server drops every KEM key of Bob's device
        await db.execute("DELETE FROM e2e_one_time_keys WHERE user_id = ? AND algorithm = ?",
                         (bob.user_id, KEM_KEY_ALGORITHM))
        await db.execute("DELETE FROM e2e_fallback_keys WHERE user_id = ? AND algorithm = ?",
                         (bob.user_id, KEM_KEY_ALGORITHM))
    await alice.send_text(room, "no downgrade for bob")
    assert not alice.crypto.has_session(bob.user_id, bob.device_id)
    page = await alice.http.get(f"/_matrix/client/v3/rooms/{q(room)}/messages", params={"dir": "b"})
    sent = next(e for e in page["chunk"] if e.get("type") == "m.room.encrypted")
    assert f"{bob.user_id}|{bob.device_id}" not in sent["content"]["ciphertext"]
    # ... and Alice's copy of the message says so (nothing is dropped silently).
    mine = next(m for m in alice.messages(room) if m.body == "no downgrade for bob")
    assert mine.unreachable == (f"{bob.user_id}|{bob.device_id}",)

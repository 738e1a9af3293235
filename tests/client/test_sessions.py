"""Signed pre-key rotation mid-conversation, and session reset (asked for and automatic)."""

from __future__ import annotations

from client_tk.core.client import ChatClient
from client_tk.core.events import DecryptionFailed, SessionReset
from tests.client.conftest import MakeClient, bodies, until
from tests.client.plaintext import assert_server_holds_no_plaintext
from tests.support.server import RunningServer


async def dm(alice: ChatClient, bob: ChatClient) -> str:
    room = await alice.create_dm(bob.user_id)
    for client in (alice, bob):
        await until(lambda c=client: room in c.rooms, what="room visible")  # type: ignore[misc]
    if bob.rooms[room].membership == "invite":
        await bob.accept(room)
    await until(lambda: alice.rooms[room].members.get(bob.user_id) == "join", what="joined")
    return room


async def test_signed_prekey_rotated_mid_conversation(server: RunningServer, new_user: MakeClient) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await dm(alice, bob)
    old_spk = bob.keys.current_spk
    assert old_spk is not None
    await bob.stop()  # Bob is offline while Alice starts the session against his current key
    await alice.send_text(room, "started against the old signed pre-key")
    new_id = await bob.rotate_signed_prekey()
    assert new_id != old_spk.key_id and {k.key_id for k in bob.keys.spks} == {old_spk.key_id, new_id}
    await alice.send_text(room, "second message, still the old X3DH header")
    bob.start()
    await until(lambda: {"started against the old signed pre-key", "second message, still the old X3DH header"}
                <= set(bodies(bob, room)), what="bob decrypts with the retired key")
    await bob.send_text(room, "answer after rotation")
    await until(lambda: "answer after rotation" in bodies(alice, room), what="alice reads the answer")
    await alice.send_text(room, "conversation goes on")
    await until(lambda: "conversation goes on" in bodies(bob, room), what="continues")
    # The server now hands out the new key to anyone starting a session.
    keys = await alice.http.post("/_matrix/client/v3/keys/query", {"device_keys": {bob.user_id: []}})
    published = keys["device_keys"][bob.user_id][bob.device_id]["im.parley.signed_pre_key"]
    assert published["key_id"] == new_id
    await assert_server_holds_no_plaintext(server.config, [
        "started against the old signed pre-key", "second message, still the old X3DH header",
        "answer after rotation", "conversation goes on"])


async def test_session_reset_requested_and_automatic(server: RunningServer, new_user: MakeClient) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await dm(alice, bob)
    await alice.send_text(room, "one")
    await until(lambda: "one" in bodies(bob, room), what="one")
    await bob.send_text(room, "two")
    await until(lambda: "two" in bodies(alice, room), what="two")

    # Bob asks for a reset: both forget the session; the next message starts a new one.
    seen: list[SessionReset] = []
    alice.bus.subscribe(lambda e: seen.append(e) if isinstance(e, SessionReset) else None)
    await bob.reset_session(alice.user_id, alice.device_id)
    assert not bob.crypto.has_session(alice.user_id, alice.device_id)
    await until(lambda: any(e.by_peer for e in seen), what="alice told of the reset")
    assert not alice.crypto.has_session(bob.user_id, bob.device_id)
    await alice.send_text(room, "three, on a fresh session")
    await until(lambda: "three, on a fresh session" in bodies(bob, room), what="after reset")

    # A broken session (Bob lost his state): Bob's client resets it by itself and
    # the conversation recovers on the next message.
    failures: list[DecryptionFailed] = []
    bob.bus.subscribe(lambda e: failures.append(e) if isinstance(e, DecryptionFailed) else None)
    async with bob.lock:
        bob.crypto.reset_session(alice.user_id, alice.device_id)  # local loss only
        await bob.store.commit()
    await alice.send_text(room, "lost in the broken session")
    await until(lambda: failures, what="bob notices the broken session")
    await until(lambda: not alice.crypto.has_session(bob.user_id, bob.device_id), what="auto reset")
    await alice.send_text(room, "four, recovered")
    await until(lambda: "four, recovered" in bodies(bob, room), what="recovered")
    await bob.send_text(room, "five")
    await until(lambda: "five" in bodies(alice, room), what="both ways again")
    await assert_server_holds_no_plaintext(server.config, [
        "three, on a fresh session", "lost in the broken session", "four, recovered"])

"""Two standard Matrix clients (matrix-nio with vodozemac Olm/Megolm) talk end-to-end
encrypted through Parley, as they would through Synapse: Alice's message reaches both of
Bob's devices, and Bob's answer reaches Alice.  nio does everything itself — key upload,
device-list tracking from /sync, /keys/query, /keys/claim, Olm-encrypted to-device room
keys, Megolm room events — and the server only relays opaque blobs."""

from __future__ import annotations

from pathlib import Path

import nio
import pytest

from tests.support.server import RunningServer

pytest.importorskip("vodozemac")

PASSWORD = "nio password 123"


async def _client(server: RunningServer, user: str, store: Path, device_name: str) -> nio.AsyncClient:
    store.mkdir()  # noqa: ASYNC240 - a test's temporary folder
    client = nio.AsyncClient(
        server.base_url, user, store_path=str(store),
        config=nio.AsyncClientConfig(encryption_enabled=True, store_sync_tokens=False),
    )
    response = await client.login(PASSWORD, device_name=device_name)
    assert isinstance(response, nio.LoginResponse), response
    if client.should_upload_keys:
        assert isinstance(await client.keys_upload(), nio.KeysUploadResponse)
    return client


async def _sync(*clients: nio.AsyncClient) -> None:
    for client in clients:
        response = await client.sync(timeout=0, full_state=client.next_batch is None)
        assert isinstance(response, nio.SyncResponse), response
        if client.should_upload_keys:
            await client.keys_upload()
        if client.should_query_keys:
            await client.keys_query()


def _plain_texts(client: nio.AsyncClient, response: nio.SyncResponse, room_id: str) -> list[str]:
    room = response.rooms.join.get(room_id)
    events = room.timeline.events if room is not None else []
    undecrypted = [e for e in events if isinstance(e, nio.MegolmEvent)]
    assert not undecrypted, f"{client.user_id}/{client.device_id} could not decrypt {undecrypted}"
    return [e.body for e in events if isinstance(e, nio.RoomMessageText)]


async def _texts_after_sync(client: nio.AsyncClient, room_id: str) -> list[str]:
    response = await client.sync(timeout=0)
    assert isinstance(response, nio.SyncResponse), response
    return _plain_texts(client, response, room_id)


async def test_two_nio_clients_exchange_megolm_messages(server: RunningServer, tmp_path: Path) -> None:
    await server.register("megalice", password=PASSWORD)
    await server.register("megbob", password=PASSWORD)
    alice = await _client(server, "megalice", tmp_path / "alice", "Alice laptop")
    bob = await _client(server, "megbob", tmp_path / "bob", "Bob phone")
    bob2 = await _client(server, "megbob", tmp_path / "bob2", "Bob tablet")
    clients = (alice, bob, bob2)
    try:
        created = await alice.room_create(
            name="Secret", invite=[bob.user_id],
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await _sync(*clients)
        joined = await bob.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        await _sync(*clients)
        assert alice.rooms[room_id].encrypted

        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello, both Bobs"},
                                     ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        # The server stored only ciphertext.
        stored = await server.api("GET", f"rooms/{room_id}/event/{sent.event_id}",
                                  headers={"Authorization": f"Bearer {alice.access_token}"})
        assert stored.json()["type"] == "m.room.encrypted"
        assert "hello" not in stored.text

        for device in (bob, bob2):
            assert await _texts_after_sync(device, room_id) == ["hello, both Bobs"], device.device_id

        await _sync(*clients)
        reply = await bob2.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hi Alice"},
                                     ignore_unverified_devices=True)
        assert isinstance(reply, nio.RoomSendResponse), reply
        assert await _texts_after_sync(alice, room_id) == ["hi Alice"]
        assert await _texts_after_sync(bob, room_id) == ["hi Alice"]
    finally:
        for client in clients:
            await client.close()


async def test_message_sent_while_the_peer_is_only_invited_decrypts(server: RunningServer, tmp_path: Path) -> None:
    """Element sends its first DM message before the invitee joined: the invitee's keys must
    already be visible then, or that message stays undecryptable for them forever."""
    await server.register("invalice", password=PASSWORD)
    await server.register("invbob", password=PASSWORD)
    alice = await _client(server, "invalice", tmp_path / "alice", "Alice")
    bob = await _client(server, "invbob", tmp_path / "bob", "Bob")
    try:
        created = await alice.room_create(
            invite=[bob.user_id],
            initial_state=[{"type": "m.room.encryption", "state_key": "",
                            "content": {"algorithm": "m.megolm.v1.aes-sha2"}}],
        )
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await _sync(alice, bob)
        assert bob.user_id in alice.rooms[room_id].invited_users  # nio shares room keys with them too
        sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "first words"},
                                     ignore_unverified_devices=True)
        assert isinstance(sent, nio.RoomSendResponse), sent
        joined = await bob.join(room_id)
        assert isinstance(joined, nio.JoinResponse), joined
        response = await bob.sync(timeout=0, full_state=True)
        assert isinstance(response, nio.SyncResponse), response
        assert "first words" in _plain_texts(bob, response, room_id)
    finally:
        await alice.close()
        await bob.close()

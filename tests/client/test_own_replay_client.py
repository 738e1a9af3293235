"""A malicious server replays one of Alice's own messages (issue 15): no device shows it again.

Alice's own copy reaches her second device over their pairwise session (no
``self`` copy under a static key), so a replay -- the same content under a new
event id, into the same room or into another one -- is refused: the ratchet
has used that message's key up (and the key inside is bound to its room).  Bob's device refuses it the same way.  The replay is fed to
each client exactly as a server would deliver it: as a ``/sync`` batch.
"""

from __future__ import annotations

from pathlib import Path

from client_tk.core.client import ChatClient
from client_tk.core.events import MessageReceived
from client_tk.core.sync import parse_sync
from client_tk.core.transport import q
from tests.client.conftest import MakeClient, bodies, until
from tests.client.test_multidevice import joined_dm, pair
from tests.support.server import RunningServer


async def replay(client: ChatClient, room_id: str, event: dict, new_id: str) -> list[MessageReceived]:
    """Deliver ``event`` again under ``new_id`` in ``room_id``; the messages the client shows."""
    copy = {**event, "event_id": new_id, "room_id": room_id}
    batch = parse_sync({"next_batch": client.since or "s0",
                        "rooms": {"join": {room_id: {"timeline": {"events": [copy]}}}}})
    async with client.lock:
        staged = await client._commit(lambda: client.processor.process(batch, client._rooms, {}))
    return [e for e in staged.events if isinstance(e, MessageReceived)]


async def test_replayed_own_message_is_refused_by_every_device(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await joined_dm(alice, bob)
    other = await joined_dm_second(alice, bob)
    alice2 = await pair(server, alice, tmp_path / "alice-dev2")
    clients.append(alice2)
    alice2.start()
    await until(lambda: room in alice2.rooms and other in alice2.rooms, what="rooms on alice2")
    await alice.send_text(room, "said once by alice")
    for reader in (alice2, bob):
        await until(lambda r=reader: "said once by alice" in bodies(r, room), what="read once")  # type: ignore[misc]
    page = await alice2.http.get(f"/_matrix/client/v3/rooms/{q(room)}/messages", params={"dir": "b", "limit": 5})
    original = next(e for e in page["chunk"] if e.get("type") == "m.room.encrypted"
                    and e["sender"] == alice.user_id)
    assert alice2.device_id in str(original["content"])  # her second device's own pairwise copy
    assert "self" not in original["content"]  # no copy under a static key
    for reader in (alice2, bob):
        assert await replay(reader, room, original, "$replayed-same-room") == []
        assert await replay(reader, other, original, "$replayed-other-room") == []
        assert bodies(reader, room).count("said once by alice") == 1
        assert "said once by alice" not in bodies(reader, other)
        assert reader.store.get_message("$replayed-same-room") is None
        assert reader.store.get_message("$replayed-other-room") is None


async def joined_dm_second(alice: ChatClient, bob: ChatClient) -> str:
    """A second room of the same two people (a group, so the DM lookup is not reused)."""
    room = await alice.create_group("second room", [bob.user_id])
    await until(lambda: room in bob.rooms, what="bob sees the second room")
    await bob.accept(room)
    await until(lambda: alice.rooms[room].members.get(bob.user_id) == "join", what="bob joined")
    return room

"""Groups with Sender Keys: a member added reads from the join on; one removed reads nothing after."""

from __future__ import annotations

from typing import Any

from client_tk.core.client import ChatClient
from client_tk.core.transport import q
from tests.client.conftest import MakeClient, bodies, until
from tests.client.plaintext import assert_server_holds_no_plaintext
from tests.support.server import RunningServer


async def join(client: ChatClient, room: str) -> None:
    await until(lambda: room in client.rooms, what=f"{client.user_id} sees {room}")
    if client.rooms[room].membership == "invite":
        await client.accept(room)


async def test_group_add_and_remove(server: RunningServer, new_user: MakeClient) -> None:
    alice, bob, carol, dave = [await new_user(n) for n in ("alice", "bob", "carol", "dave")]
    room = await alice.create_group("Trip planning", [bob.user_id, carol.user_id])
    await join(bob, room)
    await join(carol, room)
    await until(lambda: set(alice.rooms[room].joined) == {alice.user_id, bob.user_id, carol.user_id},
                what="three members")
    await alice.send_text(room, "before dave")
    await bob.send_text(room, "bob before dave")
    for reader in (alice, bob, carol):
        await until(lambda r=reader: {"before dave", "bob before dave"} <= set(bodies(r, room)),  # type: ignore[misc]
                    what="group messages")

    # Dave joins: he reads from his join on, not before.
    await alice.invite(room, dave.user_id)
    await join(dave, room)
    await until(lambda: dave.user_id in alice.rooms[room].joined, what="alice sees dave")
    await until(lambda: dave.user_id in carol.rooms[room].joined, what="carol sees dave")
    await alice.send_text(room, "welcome dave")
    await carol.send_text(room, "hi dave from carol")
    await until(lambda: {"welcome dave", "hi dave from carol"} <= set(bodies(dave, room)), what="dave reads")
    await dave.load_history(room)
    assert "before dave" not in bodies(dave, room)
    assert "bob before dave" not in bodies(dave, room)

    # Carol is removed: what follows is unreadable for her, even with her old keys.
    await alice.kick(room, carol.user_id)
    await until(lambda: alice.rooms[room].members.get(carol.user_id) == "leave", what="carol removed")
    await until(lambda: bob.rooms[room].members.get(carol.user_id) == "leave", what="bob sees it")
    await alice.send_text(room, "after carol left")
    await bob.send_text(room, "bob after carol left")
    for reader in (alice, bob, dave):
        await until(lambda r=reader: {"after carol left", "bob after carol left"} <= set(bodies(r, room)),  # type: ignore[misc]
                    what="remaining members read")
    await until(lambda: carol.rooms[room].membership == "leave", what="carol knows she left")
    # Carol's device knows every sender key it was ever given; none opens the new messages.
    for text in ("after carol left", "bob after carol left"):
        assert text not in bodies(carol, room)
    inbound = carol.store.items("sk_in")
    for event in await _raw_events(alice, room):
        if event["content"].get("chain_id") is None:
            continue
        name = f"{room}|{event['sender']}|{event['content']['sender_device']}|{event['content']['chain_id']}"
        body = alice.store.get_message(event["event_id"])
        if body is not None and body["body"] in ("after carol left", "bob after carol left"):
            assert name not in inbound, "carol holds the sender key used after her removal"
    await assert_server_holds_no_plaintext(server.config, [
        "bob before dave", "welcome dave", "hi dave from carol", "after carol left", "bob after carol left"])


async def _raw_events(client: ChatClient, room: str) -> list[dict[str, Any]]:
    page = await client.http.get(f"/_matrix/client/v3/rooms/{q(room)}/messages", params={"dir": "b", "limit": 100})
    return [e for e in page["chunk"] if e.get("type") == "m.room.encrypted"]

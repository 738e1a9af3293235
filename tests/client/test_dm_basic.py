"""Smoke: two users exchange direct messages over a real homeserver."""

from __future__ import annotations

from tests.client.conftest import MakeClient, bodies, until


async def test_direct_messages_both_ways(new_user: MakeClient) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await alice.create_dm(bob.user_id)
    await until(lambda: room in bob.rooms, what="bob sees the room")
    if bob.rooms[room].membership == "invite":
        await bob.accept(room)
    await until(lambda: alice.rooms[room].members.get(bob.user_id) == "join", what="bob joined")
    await alice.send_text(room, "hello bob")
    await until(lambda: "hello bob" in bodies(bob, room), what="bob reads")
    await bob.send_text(room, "hi alice")
    await until(lambda: "hi alice" in bodies(alice, room), what="alice reads")
    assert bodies(alice, room) == ["hello bob", "hi alice"]
    assert bodies(bob, room) == ["hello bob", "hi alice"]

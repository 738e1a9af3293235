"""Deleting messages (own only) and resuming an interrupted encrypted download."""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path

import pytest

from client_tk.core.client import ChatClient
from client_tk.core.events import ClientEvent, Message, MessageDeleted, TransferProgress
from common.errors import MatrixError
from tests.client.conftest import MakeClient, bodies, until
from tests.support.server import RunningServer


async def joined_group(alice: ChatClient, *others: ChatClient) -> str:
    room = await alice.create_group("Messages", [o.user_id for o in others])
    for other in others:
        await until(lambda o=other: room in o.rooms, what="invite")  # type: ignore[misc]
        await other.accept(room)
    await until(lambda: len(alice.rooms[room].joined) == 1 + len(others), what="everyone joined")
    return room


async def test_delete_own_message_not_others(server: RunningServer, new_user: MakeClient) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    deleted: list[ClientEvent] = []
    bob.bus.subscribe(lambda e: deleted.append(e) if isinstance(e, MessageDeleted) else None)
    for room in (await joined_group(alice, bob), await _dm(alice, bob)):
        await check_deletion(alice, bob, room, deleted)


async def check_deletion(alice: ChatClient, bob: ChatClient, room: str, deleted: list[ClientEvent]) -> None:
    mine = await alice.send_text(room, f"regrettable message in {room}")
    keep = await alice.send_text(room, "a message to keep")
    theirs = await bob.send_text(room, "bob's own words")
    await until(lambda: "bob's own words" in bodies(alice, room)
                and "a message to keep" in bodies(bob, room), what="all delivered")

    # Someone else's message cannot be deleted, by the client nor the server.
    with pytest.raises(MatrixError) as refused:
        await bob.delete_message(room, mine)
    assert refused.value.status == 403
    assert "your own" in refused.value.message
    if not alice.rooms[room].is_direct:  # in a group the server refuses as well
        with pytest.raises(MatrixError) as refused:
            await bob.http.put(f"/_matrix/client/v3/rooms/{room}/redact/{mine}/by-bob", {})
        assert refused.value.status == 403
    await alice.delete_message(room, mine)
    await until(lambda: any(isinstance(e, MessageDeleted) and e.event_id == mine for e in deleted),
                what="bob is told")
    for reader in (alice, bob):
        def shown_deleted(c: ChatClient = reader) -> bool:
            return [m.redacted for m in c.messages(room) if m.event_id == mine] == [True]

        await until(shown_deleted, what="shown as deleted")
        assert not any("regrettable" in b for b in bodies(reader, room))
        assert not reader.search(room, "regrettable")
        assert reader.search(room, "to keep")[0].event_id == keep
    # The server keeps no ciphertext of it either: the event comes back redacted.
    raw = await bob.http.get(f"/_matrix/client/v3/rooms/{room}/event/{mine}")
    assert "body" not in raw["content"] and "ciphertext" not in raw["content"]
    assert bob.store.get_message(theirs) is not None


async def _dm(alice: ChatClient, bob: ChatClient) -> str:
    room = await alice.create_dm(bob.user_id)
    await until(lambda: room in bob.rooms, what="dm invite")
    if bob.rooms[room].membership == "invite":
        await bob.accept(room)
    await until(lambda: alice.rooms[room].members.get(bob.user_id) == "join", what="bob joined the dm")
    return room


async def test_interrupted_download_resumes(server: RunningServer, new_user: MakeClient,
                                            tmp_path: Path) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room = await _dm(alice, bob)
    source = tmp_path / "big.bin"
    data = os.urandom(12 * 1024 * 1024 + 12345)
    source.write_bytes(data)
    event_id = await alice.send_file(room, source)
    await until(lambda: bob.store.get_message(event_id) is not None, what="bob gets the file message")
    message = Message.from_dict(bob.store.get_message(event_id) or {})
    assert message.kind == "file" and message.body == "big.bin"

    dest = tmp_path / "bob-downloads" / "big.bin"
    dest.parent.mkdir()
    part = dest.with_name("big.bin.part")
    progress: list[int] = []
    stop = asyncio.Event()

    def on_progress(done: int, total: int) -> None:
        progress.append(done)
        if done >= 3 * 1024 * 1024:
            stop.set()

    task = asyncio.create_task(bob.download_file(message, dest, on_progress))
    await asyncio.wait_for(stop.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not dest.exists()
    partial = part.stat().st_size
    assert 0 < partial < len(data), partial

    events: list[TransferProgress] = []
    bob.bus.subscribe(lambda e: events.append(e) if isinstance(e, TransferProgress) else None)
    resumed: list[int] = []
    path = await bob.download_file(message, dest, lambda done, total: resumed.append(done))
    assert path == dest
    assert hashlib.sha256(dest.read_bytes()).digest() == hashlib.sha256(data).digest()
    assert not part.exists()
    assert resumed[0] > partial  # it went on from where it stopped, not from zero
    assert events and events[-1].direction == "download" and events[-1].done == events[-1].total

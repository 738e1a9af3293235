"""Presence, typing, read receipts and unread counts, favourites across a restart."""

from __future__ import annotations

import asyncio
from typing import TypeVar

from client_tk.core.account import login
from client_tk.core.client import ChatClient
from client_tk.core.events import (
    ClientEvent,
    PresenceChanged,
    ReceiptUpdated,
    TypingChanged,
    UnreadCountChanged,
)
from tests.client.conftest import PASSWORD, MakeClient, bodies, options, until
from tests.support.server import RunningServer

E = TypeVar("E", bound=ClientEvent)


class Seen:
    """Every event a client's bus emitted, for polling with ``until``."""

    def __init__(self, client: ChatClient) -> None:
        self.events: list[ClientEvent] = []
        client.bus.subscribe(self.events.append)

    def of(self, kind: type[E]) -> list[E]:
        return [e for e in self.events if isinstance(e, kind)]


async def test_presence_and_typing(server: RunningServer, new_user: MakeClient) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    seen = Seen(bob)
    room = await alice.create_dm(bob.user_id)
    await until(lambda: room in bob.rooms, what="invite")
    await bob.accept(room)

    await alice.set_presence("online")
    await until(lambda: any(e.user_id == alice.user_id and e.presence == "online"
                            for e in seen.of(PresenceChanged)), what="bob sees alice online")
    assert (await bob.get_presence(alice.user_id))["presence"] == "online"
    await alice.set_presence("offline")
    await until(lambda: [e.presence for e in seen.of(PresenceChanged)
                         if e.user_id == alice.user_id][-1:] == ["offline"], what="bob sees alice offline")
    assert (await bob.get_presence(alice.user_id))["presence"] == "offline"
    await asyncio.wait_for(alice.wait_synced(), 20)  # her still-running sync loop keeps her offline
    assert (await bob.get_presence(alice.user_id))["presence"] == "offline"

    await alice.set_typing(room, True)
    await until(lambda: any(e.room_id == room and alice.user_id in e.user_ids
                            for e in seen.of(TypingChanged)), what="bob sees alice typing")
    await alice.set_typing(room, False)
    await until(lambda: [e.user_ids for e in seen.of(TypingChanged)
                         if e.room_id == room][-1] == (), what="bob sees alice stop typing")


async def test_receipts_and_unread_counts(server: RunningServer, new_user: MakeClient,
                                          clients: list[ChatClient]) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    carol = await new_user("carol", start=False)
    seen = Seen(alice)
    room = await alice.create_group("Receipts", [bob.user_id, carol.user_id])
    await until(lambda: room in bob.rooms, what="bob invited")
    await bob.accept(room)
    await carol.sync_once(0)
    await carol.accept(room)
    await until(lambda: carol.user_id in alice.rooms[room].joined, what="carol joined")
    await carol.sync_once(0)
    await carol.close()  # Carol is offline while messages arrive
    clients.remove(carol)

    sent = [await alice.send_text(room, f"unread {i}") for i in range(3)]
    await until(lambda: "unread 2" in bodies(bob, room), what="bob reads")
    await bob.mark_read(room, sent[-1])
    await until(lambda: any(e.room_id == room and e.event_id == sent[-1]
                            and e.user_id == bob.user_id for e in seen.of(ReceiptUpdated)),
                what="alice gets bob's receipt")

    # Carol comes back: three unread, until she reads them.
    carol = await login(options(server.base_url, carol.store.folder.parent), carol.user_id, PASSWORD)
    clients.append(carol)
    carol_seen = Seen(carol)
    carol.start()
    await until(lambda: "unread 2" in bodies(carol, room), what="carol receives")
    await until(lambda: carol.rooms[room].unread == 3, what="three unread for carol")
    assert any(e.room_id == room and e.count == 3 for e in carol_seen.of(UnreadCountChanged))
    assert [r.unread for r in carol.room_list() if r.room_id == room] == [3]
    await carol.mark_read(room, sent[-1])
    await until(lambda: carol.rooms[room].unread == 0, what="read: no unread left")
    await until(lambda: any(e.event_id == sent[-1] and e.user_id == carol.user_id
                            for e in seen.of(ReceiptUpdated)), what="alice gets carol's receipt")
    # Own messages never count as unread.
    assert alice.rooms[room].unread == 0


async def test_favourites_survive_a_restart(server: RunningServer, new_user: MakeClient,
                                            clients: list[ChatClient]) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    rooms = [await alice.create_group(f"Group {i}", [bob.user_id]) for i in range(3)]
    favourite = max(rooms)  # sorts last by id: only the tag can put it first
    await alice.set_favourite(favourite, True)
    await until(lambda: "m.favourite" in alice.rooms[favourite].tags, what="tag synced")
    assert alice.room_list()[0].room_id == favourite

    await alice.close()
    clients.remove(alice)
    again = await login(options(server.base_url, alice.store.folder.parent), alice.user_id, PASSWORD)
    clients.append(again)
    assert "m.favourite" in again.rooms[favourite].tags
    assert again.room_list()[0].room_id == favourite
    again.start()
    await asyncio.wait_for(again.wait_synced(), 20)
    assert again.room_list()[0].room_id == favourite

    await again.set_favourite(favourite, False)
    await until(lambda: "m.favourite" not in again.rooms[favourite].tags, what="untagged")
    assert again.room_list()[0].room_id == min(rooms)

"""The outbox: a refused send fails on its own message, never blocks the others, and can be
retried or discarded; a send without an answer stays pending and goes out by itself later."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

from client_tk.core.account import login, register
from client_tk.core.client import ChatClient
from client_tk.core.events import ClientEvent, ConnectionState, ConnectionStateChanged, OutboxChanged
from client_tk.core.transport import CLIENT_V3, TransportFailure
from common.errors import MatrixError
from tests.client.conftest import PASSWORD, MakeClient, bodies, options, until
from tests.client.dropping_proxy import DroppingProxy
from tests.support.server import RunningServer


async def _joined_group(alice: ChatClient, bob: ChatClient, name: str) -> str:
    room = await alice.create_group(name, [bob.user_id])
    await until(lambda: room in bob.rooms, what=f"bob invited to {name}")
    await bob.accept(room)
    await until(lambda: bob.user_id in alice.rooms[room].joined, what=f"bob in {name}")
    return room


async def _only_admins_send(alice: ChatClient, room: str, locked: bool) -> None:
    path = f"{CLIENT_V3}/rooms/{quote(room, safe='')}/state/m.room.power_levels/"
    levels = await alice.http.get(path)
    levels.setdefault("events", {})["m.room.encrypted"] = 100 if locked else 0
    await alice.http.put(path, levels)


async def test_a_refused_send_fails_alone_and_can_be_retried_or_discarded(
        server: RunningServer, new_user: MakeClient) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    locked = await _joined_group(alice, bob, "Locked")
    open_room = await _joined_group(alice, bob, "Open")
    seen: list[ClientEvent] = []
    bob.bus.subscribe(seen.append)
    await until(lambda: bob.connection == ConnectionState.CONNECTED, what="bob connected")
    await _only_admins_send(alice, locked, True)

    with pytest.raises(MatrixError) as refused:
        await bob.send_text(locked, "refused words")
    assert refused.value.status == 403
    [failed] = bob.outgoing(locked)
    assert failed.state == "failed" and failed.body == "refused words"
    assert failed.error is not None and "M_FORBIDDEN" in failed.error
    assert any(isinstance(e, OutboxChanged) and e.room_id == locked and e.entries
               and e.entries[0].state == "failed" for e in seen)

    # Sends to another room go through, before and after a sync loop pass over the outbox.
    await bob.send_text(open_room, "first in open")
    await until(lambda: "first in open" in bodies(alice, open_room), what="alice gets the open message")
    before = bob._batches
    await until(lambda: bob._batches >= before + 2, what="two more sync batches")
    await bob.send_text(open_room, "second in open")
    await until(lambda: "second in open" in bodies(alice, open_room), what="and the next one")
    assert bob.connection == ConnectionState.CONNECTED
    assert not [e for e in seen if isinstance(e, ConnectionStateChanged)
                and e.state != ConnectionState.CONNECTED]
    assert [m.state for m in bob.outgoing(locked)] == ["failed"]  # still there, not retried by itself
    assert bob.outgoing(open_room) == []

    # Retry, once the room lets bob speak again.
    await _only_admins_send(alice, locked, False)
    event_id = await bob.retry_send(failed.local_id)
    assert bob.outgoing(locked) == []
    await until(lambda: "refused words" in bodies(alice, locked), what="alice gets the retried message")
    assert [m.event_id for m in bob.messages(locked) if m.body == "refused words"] == [event_id]

    # Discard: a refused message that bob gives up on never reaches anyone.
    await _only_admins_send(alice, locked, True)
    with pytest.raises(MatrixError):
        await bob.send_text(locked, "never mind")
    [again] = bob.outgoing(locked)
    await bob.delete_send(again.local_id)
    assert bob.outgoing(locked) == []
    with pytest.raises(MatrixError) as gone:
        await bob.retry_send(again.local_id)
    assert gone.value.status == 404
    await _only_admins_send(alice, locked, False)
    await bob.send_text(locked, "after the discard")
    await until(lambda: "after the discard" in bodies(alice, locked), what="later message")
    assert "never mind" not in bodies(alice, locked)
    assert bob.connection == ConnectionState.CONNECTED


async def test_a_failed_send_survives_a_restart(server: RunningServer, new_user: MakeClient,
                                                clients: list[ChatClient]) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room = await _joined_group(alice, bob, "Restart")
    await _only_admins_send(alice, room, True)
    with pytest.raises(MatrixError):
        await bob.send_text(room, "kept for later")
    await bob.close()
    clients.remove(bob)
    again = await login(options(server.base_url, bob.store.folder.parent), bob.user_id, PASSWORD)
    clients.append(again)
    [kept] = again.outgoing(room)
    assert (kept.state, kept.body) == ("failed", "kept for later")
    await _only_admins_send(alice, room, False)
    await again.sync_once(0)
    await again.retry_send(kept.local_id)
    await until(lambda: "kept for later" in bodies(alice, room), what="delivered after the restart")


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[DroppingProxy]:
    url = urlsplit(server.base_url)
    assert url.hostname is not None and url.port is not None
    running = DroppingProxy(url.hostname, url.port)
    await running.start()
    yield running
    await running.close()


@pytest.fixture
async def bob(proxy: DroppingProxy, tmp_path: Path) -> AsyncIterator[ChatClient]:
    """bob (for the tests that ask for him), syncing through the proxy whose rules lose his requests."""
    bob = await register(options(proxy.base_url, tmp_path / "bob"), f"bob{secrets.token_hex(3)}", PASSWORD)
    bob.start()
    yield bob
    await bob.close()


async def test_an_unanswered_send_stays_pending_and_goes_out_by_itself(
        server: RunningServer, proxy: DroppingProxy, bob: ChatClient, new_user: MakeClient) -> None:
    alice = await new_user("alice")
    room = await _joined_group(alice, bob, "Flaky line")
    # More lost attempts than one request's retries: the entry outlives the call.
    proxy.kill(lambda method, path: method == "PUT" and "/send/m.room.encrypted/" in path,
               times=1 + bob.http.retries)
    with pytest.raises(TransportFailure):
        await bob.send_text(room, "eventually")
    [waiting] = bob.outgoing(room)
    assert waiting.state == "pending" and waiting.attempts == 1 and waiting.error
    await until(lambda: not bob.outgoing(room), what="the sync loop sends it when due")
    await until(lambda: "eventually" in bodies(alice, room), what="alice gets it")
    page = await alice.http.get(f"{CLIENT_V3}/rooms/{quote(room, safe='')}/messages",
                                params={"dir": "b"})
    assert len([e for e in page["chunk"] if e["type"] == "m.room.encrypted"]) == 1


async def test_a_message_written_offline_waits_and_goes_out_when_back(
        server: RunningServer, proxy: DroppingProxy, bob: ChatClient, new_user: MakeClient) -> None:
    alice, carol = await new_user("alice"), await new_user("carol")
    room = await _joined_group(alice, bob, "Offline")
    await alice.invite(room, carol.user_id)
    await until(lambda: room in carol.rooms, what="carol invited")
    await carol.accept(room)
    await until(lambda: carol.user_id in bob.rooms[room].joined, what="bob sees carol")
    # bob loses the connection (encrypting for carol's new device needs the server first)
    proxy.kill(lambda method, path: True, times=10**9)
    with pytest.raises(TransportFailure):
        await bob.send_text(room, "typed on the train")
    [waiting] = bob.outgoing(room)
    assert (waiting.state, waiting.body) == ("waiting", "typed on the train")
    assert waiting.error is not None and waiting.error.startswith("offline")
    stored = bob.outbox.box.get(waiting.local_id)
    assert stored is not None and stored["content"] is None  # not encrypted yet: no session to carol
    # a second message while offline queues behind it (the order is kept)
    with pytest.raises((TransportFailure, MatrixError)):  # offline, or behind the waiting one
        await bob.send_text(room, "and a second one")
    assert [m.body for m in bob.outgoing(room)] == ["typed on the train", "and a second one"]
    # a restart while offline keeps it (the outbox is in the store)
    await bob.stop()
    assert [m.body for m in bob.outgoing(room)] == ["typed on the train", "and a second one"]
    proxy.rules.clear()  # the connection is back
    bob.start()
    await until(lambda: not bob.outgoing(room), what="the sync loop encrypts and sends them")
    for reader in (alice, bob, carol):
        await until(lambda r=reader: {"typed on the train", "and a second one"} <= set(bodies(r, room)),
                    what=f"{reader.user_id} has both")
    for reader in (alice, bob, carol):
        said = [b for b in bodies(reader, room) if b in ("typed on the train", "and a second one")]
        assert said == ["typed on the train", "and a second one"]


async def test_two_sends_of_one_entry_at_once_share_one_attempt(
        server: RunningServer, proxy: DroppingProxy, bob: ChatClient, new_user: MakeClient) -> None:
    """A retry (or a send) racing another attempt of the same entry — the sync loop's flush, a
    second click — waits for that attempt and answers its event id; one event reaches the room."""
    alice = await new_user("alice")
    room = await _joined_group(alice, bob, "Double click")
    proxy.kill(lambda method, path: method == "PUT" and "/send/m.room.encrypted/" in path,
               times=1 + bob.http.retries)
    with pytest.raises(TransportFailure):
        await bob.send_text(room, "once only")
    [pending] = bob.outgoing(room)
    first, second = await asyncio.gather(bob.retry_send(pending.local_id),
                                         bob.retry_send(pending.local_id))
    assert first == second and first.startswith("$")
    assert bob.outgoing(room) == []
    await until(lambda: "once only" in bodies(alice, room), what="alice gets it")
    page = await alice.http.get(f"{CLIENT_V3}/rooms/{quote(room, safe='')}/messages",
                                params={"dir": "b"})
    assert len([e for e in page["chunk"] if e["type"] == "m.room.encrypted"]) == 1

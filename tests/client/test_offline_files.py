"""A file sent while offline waits in the outbox (its ciphertext beside the store), survives a
restart, and is uploaded (with progress), encrypted and sent in order when the server is back;
a refused upload fails on its own entry, can be retried, or deleted with its ciphertext."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from client_tk.core import uploads
from client_tk.core.client import ChatClient
from client_tk.core.events import ClientEvent, Message, TransferProgress
from client_tk.core.transport import TransportFailure
from tests.client.conftest import MakeClient, bodies, until
from tests.client.dropping_proxy import DroppingProxy
from tests.client.test_outbox import _joined_group, bob, proxy  # noqa: F401 (fixtures)
from tests.support.server import RunningServer, serve_homeserver

QUOTA = 600_000


@pytest.fixture
async def server(make_config: Any) -> AsyncIterator[RunningServer]:
    """A homeserver with a small media quota per user (so an upload can be refused)."""
    async with serve_homeserver(make_config(limits={"max_media_bytes_per_user": QUOTA})) as running:
        yield running


async def test_a_file_sent_offline_goes_out_on_reconnect(
        server: RunningServer, proxy: DroppingProxy, bob: ChatClient,  # noqa: F811
        new_user: MakeClient, tmp_path: Path) -> None:
    alice = await new_user("alice")
    room = await _joined_group(alice, bob, "Files")
    source = tmp_path / "notes.txt"
    data = os.urandom(300_000)
    source.write_bytes(data)
    seen: list[ClientEvent] = []
    bob.bus.subscribe(seen.append)

    proxy.kill(lambda method, path: True, times=10**9)  # bob is offline
    with pytest.raises(TransportFailure):
        await bob.send_file(room, source)
    [waiting] = bob.outgoing(room)
    assert (waiting.state, waiting.kind, waiting.body) == ("waiting", "file", "notes.txt")
    assert waiting.error is not None and waiting.error.startswith("offline")
    kept = uploads.ciphertext_path(bob.store.folder, waiting.local_id)
    assert kept.stat().st_size >= len(data) and data[:64] not in kept.read_bytes()  # ciphertext only
    assert oct(kept.stat().st_mode & 0o777) == "0o600"
    with pytest.raises(TransportFailure):
        await bob.send_text(room, "sent the notes")
    await bob.stop()  # a restart while offline keeps both
    assert [m.body for m in bob.outgoing(room)] == ["notes.txt", "sent the notes"]

    proxy.rules.clear()  # the connection is back
    bob.start()
    await until(lambda: not bob.outgoing(room), what="uploaded and sent")
    progress = [e for e in seen if isinstance(e, TransferProgress) and e.transfer_id == waiting.local_id]
    assert progress and progress[-1].done == progress[-1].total and progress[-1].direction == "upload"
    assert not kept.exists()
    await until(lambda: bodies(alice, room)[-2:] == ["notes.txt", "sent the notes"], what="alice, in order")
    message = next(m for m in alice.messages(room) if m.kind == "file")
    dest = tmp_path / "alice-notes.txt"
    await alice.download_file(message, dest)
    assert dest.read_bytes() == data


async def test_a_refused_upload_fails_alone_retry_and_delete(
        server: RunningServer, proxy: DroppingProxy, bob: ChatClient,  # noqa: F811
        new_user: MakeClient, tmp_path: Path) -> None:
    alice = await new_user("alice")
    room = await _joined_group(alice, bob, "Quota")
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(QUOTA + 1000))  # over the quota once uploaded
    proxy.kill(lambda method, path: True, times=10**9)
    with pytest.raises(TransportFailure):
        await bob.send_file(room, big)
    with pytest.raises(TransportFailure):
        await bob.send_text(room, "and a text")
    proxy.rules.clear()
    await until(lambda: [m.state for m in bob.outgoing(room)] == ["failed"], what="the upload refused")
    [failed] = bob.outgoing(room)
    assert failed.body == "big.bin" and failed.error and "M_RESOURCE_LIMIT_EXCEEDED" in failed.error
    await until(lambda: "and a text" in bodies(alice, room), what="the text is not held up by it")

    await bob.retry_send(failed.local_id)  # uploaded again: refused again, counted
    await until(lambda: [(m.state, m.attempts) for m in bob.outgoing(room)] == [("failed", failed.attempts + 1)],
                what="refused again")
    await bob.delete_send(failed.local_id)
    assert bob.outgoing(room) == []
    assert not uploads.ciphertext_path(bob.store.folder, failed.local_id).exists()
    assert not [m for m in alice.messages(room) if isinstance(m, Message) and m.kind == "file"]

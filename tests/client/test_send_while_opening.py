"""A message sent while its conversation's history loads is announced once, as a new message.

The race the GUI test of the find bar hit in CI: a group is created, the window opens it
(``load_history`` pages ``/messages``) and the user sends at once.  The server has stored the
message, its answer is still on the way, and the history page brings the event back first: the
history path cached it from the outbox entry without telling anyone, the send's answer then found
it cached, and no :class:`MessageReceived` ever came -- the conversation list never showed it as
the newest message and an open chat never showed it at all.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from client_tk.core.account import register
from client_tk.core.client import ChatClient
from client_tk.core.events import ClientEvent, Message, MessageReceived
from tests.client.conftest import PASSWORD, options
from tests.client.dropping_proxy import DroppingProxy
from tests.support.server import RunningServer


@pytest.fixture
async def proxy(server: RunningServer) -> AsyncIterator[DroppingProxy]:
    url = urlsplit(server.base_url)
    assert url.hostname is not None and url.port is not None
    running = DroppingProxy(url.hostname, url.port)
    await running.start()
    yield running
    await running.close()


async def test_a_send_answered_after_the_history_brought_it_is_announced_once(
        proxy: DroppingProxy, tmp_path: Path) -> None:
    # No sync loop: the /sync echo would announce the message too, whichever came first.
    dora: ChatClient = await register(options(proxy.base_url, tmp_path / "dora"),
                                      f"dora{secrets.token_hex(3)}", PASSWORD)
    try:
        announced: list[Message] = []

        def seen(event: ClientEvent) -> None:
            if isinstance(event, MessageReceived):
                announced.append(event.message)
        dora.bus.subscribe(seen)
        room = await dora.create_group("Holidays")
        proxy.hold(lambda method, path: method == "PUT" and "/send/m.room.encrypted/" in path)
        sending = asyncio.create_task(dora.send_text(room, "the blue boat at the lake"))
        await proxy.answered.wait()  # the server stored it; its answer waits in the proxy
        assert await dora.load_history(room) == 1  # the conversation opened: the page has it
        proxy.release()
        event_id = await sending
        assert [(m.event_id, m.body) for m in announced] == [(event_id, "the blue boat at the lake")]
        assert not dora.outgoing(room)
        await dora.sync_once(0)  # the echo of the sync: no second announcement
        assert [m.event_id for m in announced] == [event_id]
        assert [m.body for m in dora.messages(room)] == ["the blue boat at the lake"]
    finally:
        await dora.close()

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Offline: alice's connection dies (a proxy between her and the server drops everything).
What she types is kept in the outbox ("Waiting for the connection…"), the failed typing notice
is not shown to her, and the message goes out by itself when the connection is back."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from client_tk import bridge as b
from tests.client.dropping_proxy import DroppingProxy
from tests.gui.conftest import Mailbox, pump, screenshot
from tests.gui.test_outbox_panel import open_group, say
from tests.gui.test_two_clients import body_text, register

pytestmark = pytest.mark.gui


@pytest.fixture
def proxy(gui_server: str) -> Iterator[DroppingProxy]:
    url = urlsplit(gui_server)
    assert url.hostname is not None and url.port is not None
    running = DroppingProxy(url.hostname, url.port)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="gui-proxy", daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(running.start(), loop).result(30)
    yield running
    asyncio.run_coroutine_threadsafe(running.close(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(30)
    loop.close()


def test_a_message_typed_offline_goes_out_on_reconnect(gui_server: str, proxy: DroppingProxy, make_app: Any,
                                                       tk_root: Any, mailbox: Mailbox, xdisplay: str) -> None:
    alice = make_app(proxy.base_url, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    alice_email = register(alice, tk_root, mailbox, "alice")
    register(bob, tk_root, mailbox, "bob")
    room_id = open_group(bob, alice, tk_root, alice_email, "Train talk")
    pump(tk_root, lambda: alice.screen.connection_label.cget("text") == "Connected", what="alice connected")
    failures: list[b.CommandFailed] = []
    alice.bus.subscribe(b.CommandFailed, failures.append)

    proxy.kill(lambda method, path: True, times=10**9)  # the train enters the tunnel
    pump(tk_root, lambda: alice.screen.connection_label.cget("text").startswith("Reconnecting"),
         what="alice sees she is offline")
    chat = alice.screen.conversation
    assert chat.room.room_id == room_id
    chat.entry.focus_force()
    chat.entry.event_generate("<KeyPress>", keysym="a")  # the typing notice cannot go out
    chat.entry.delete("1.0", "end")
    say(alice, tk_root, "written in the tunnel")
    panel = chat.outbox
    pump(tk_root, lambda: [(e.body, e.state) for e in panel.entries] == [("written in the tunnel", "waiting")]
         and "Waiting for the connection" in next(iter(panel.rows.values()))["label"].cget("text"),
         what="kept in the outbox, waiting")
    pump(tk_root, lambda: any(f.command == "SetTyping" for f in failures), what="the typing notice failed")
    assert chat.entry.get("1.0", "end").strip() == ""
    shown = " ".join(f"{title} {text}" for title, text in alice.toast.history)
    assert "TransportFailure" not in shown and "typing" not in shown and "Could not do that" not in shown, \
        (shown, [(f.command, f.errcode) for f in failures])
    screenshot(xdisplay, "offline_01_waiting")

    proxy.rules.clear()  # out of the tunnel
    pump(tk_root, lambda: not panel.entries, timeout=120, what="sent after reconnecting")
    pump(tk_root, lambda: "written in the tunnel" in body_text(bob), what="bob reads it")
    assert body_text(alice).count("written in the tunnel") == 1
    assert alice.screen.connection_label.cget("text") == "Connected"

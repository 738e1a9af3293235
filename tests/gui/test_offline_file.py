# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""A file sent while offline: kept in the outbox ("Waiting for the connection…", no error),
uploaded with a progress bar when the connection is back, then delivered."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from client_tk import bridge as b
from client_tk.core.events import TransferProgress
from tests.client.dropping_proxy import DroppingProxy
from tests.gui.conftest import Mailbox, pump, screenshot
from tests.gui.test_offline import proxy  # noqa: F401 (fixture)
from tests.gui.test_outbox_panel import open_group
from tests.gui.test_two_clients import register

pytestmark = pytest.mark.gui


def test_a_file_sent_offline_goes_out_on_reconnect(gui_server: str, proxy: DroppingProxy,  # noqa: F811
                                                   make_app: Any, tk_root: Any, mailbox: Mailbox,
                                                   xdisplay: str, tmp_path: Path) -> None:
    alice = make_app(proxy.base_url, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    alice_email = register(alice, tk_root, mailbox, "alice")
    register(bob, tk_root, mailbox, "bob")
    open_group(bob, alice, tk_root, alice_email, "Files on the train")
    pump(tk_root, lambda: alice.screen.connection_label.cget("text") == "Connected", what="alice connected")
    failures: list[b.CommandFailed] = []
    alice.bus.subscribe(b.CommandFailed, failures.append)
    source = tmp_path / "slides.pdf"
    source.write_bytes(os.urandom(2 * 1024 * 1024))

    proxy.kill(lambda method, path: True, times=10**9)  # offline
    pump(tk_root, lambda: alice.screen.connection_label.cget("text").startswith("Reconnecting"),
         what="alice is offline")
    chat = alice.screen.conversation
    chat.send_path(str(source), False)
    panel = chat.outbox
    pump(tk_root, lambda: [(e.kind, e.state) for e in panel.entries] == [("file", "waiting")], what="queued")
    [row] = panel.rows.values()
    assert row["label"].cget("text") == "slides.pdf  ·  Waiting for the connection…"
    assert not failures  # no error toast: the file waits
    screenshot(xdisplay, "offline_file_01_waiting")

    bars: list[tuple[float, str]] = []  # what the panel showed at each progress report

    def watch(event: TransferProgress) -> None:
        for shown in panel.rows.values():
            if "bar" in shown:
                bars.append((float(shown["bar"].cget("value")), shown["bar"].winfo_manager()))
    alice.bus.subscribe(TransferProgress, watch)  # after the panel's own handler
    proxy.rules.clear()  # back online
    pump(tk_root, lambda: not panel.entries, what="uploaded and sent")
    assert bars and bars[-1] == (100.0, "pack"), bars
    for app in (bob, alice):
        view = app.screen.conversation.messages
        pump(tk_root, lambda v=view: [(m.kind, m.body) for m in v.messages.values()] == [("file", "slides.pdf")]
             and any(c["frame"].winfo_exists() for c in v.cards.values()), what="the file card on both")
    assert not failures
    for app in (bob, alice):  # the newest message of the conversation, in both lists
        room = app.screen.conversation.room.room_id
        pump(tk_root, lambda a=app, r=room: "[file] slides.pdf" in a.screen.room_list.rows[r]["preview"].cget("text"),
             what="the file as the list's preview")
    screenshot(xdisplay, "offline_file_02_delivered")

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The "safety number changed" dialog (issue 15), with two GUI clients and a real server.

Bob loses his device and starts a new one with a new identity key (no pairing: the
old key is gone with the old device, which he removes).  Alice's next message is
held: the dialog shows the notice and nothing is sent; after she accepts the new
safety number in the dialog, her next message reaches Bob's new device."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from client_tk.core import account as acct
from client_tk.core.client import ChatClient
from common.crypto.account_keys import AccountKeys
from tests.client.conftest import bodies, options
from tests.gui.conftest import PASSWORD, Mailbox, pump, screenshot
from tests.gui.test_outbox_panel import open_group, say
from tests.gui.test_two_clients import body_text, register

pytestmark = pytest.mark.gui


async def new_identity_device(base_url: str, user_id: str, root: Path) -> ChatClient:
    opts = options(base_url, root)
    keys = AccountKeys.generate()  # a new identity (and login and storage key)
    result = await acct._login_request(opts, user_id, [keys.login_key], PASSWORD, None, "password")
    store = acct._open_store(opts, user_id)
    client = await acct._finish(opts, store, acct._keyring(opts, store, keys), user_id, result["device_id"], result["access_token"],
                                PASSWORD)
    client.start()
    return client


def test_changed_safety_number_dialog_holds_then_accepts(gui_server: str, make_app: Any, tk_root: Any,
                                                        mailbox: Mailbox, xdisplay: str, tmp_path: Path) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")
    room_id = open_group(alice, bob, tk_root, bob_email, "Trust talk")
    say(alice, tk_root, "before the change")
    pump(tk_root, lambda: "before the change" in body_text(bob), what="bob reads the first message")

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="bob-second-device", daemon=True)
    thread.start()
    try:
        second = asyncio.run_coroutine_threadsafe(
            new_identity_device(gui_server, bob.user_id, tmp_path / "bob-second"), loop).result(60)
        old_device = bob.device_id
        asyncio.run_coroutine_threadsafe(second.delete_device(old_device, PASSWORD), loop).result(60)
        core = alice.worker.client
        pump(tk_root, lambda: bob.user_id in core.directory.outdated(), what="alice told of bob's new device")

        say(alice, tk_root, "held until accepted")
        prompts = alice.security
        pump(tk_root, lambda: bob.user_id in prompts.open and prompts.open[bob.user_id].winfo_ismapped(),
             what="the safety number dialog")
        dialog = prompts.open[bob.user_id]
        notice = " ".join(str(w.cget("text")) for w in walk(dialog) if w.winfo_class() == "TLabel")
        assert f"safety number with {bob.user_id} changed" in notice
        screenshot(xdisplay, "safety_number_changed")
        next(w for w in walk(dialog) if w.winfo_class() == "TButton"
             and w.cget("text") == "Accept new safety number").invoke()
        pump(tk_root, lambda: not core.directory.changed(), what="accepted")
        say(alice, tk_root, "after accepting")
        pump(tk_root, lambda: "after accepting" in bodies(second, room_id), what="bob's new device reads")
        assert "held until accepted" not in bodies(second, room_id)  # it was never sent
        asyncio.run_coroutine_threadsafe(second.close(), loop).result(60)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def walk(widget: Any) -> Any:
    yield widget
    for child in widget.winfo_children():
        yield from walk(child)

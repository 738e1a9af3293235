# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The "not delivered to" mark on one's own message in the Tk view (issue 15).

Bob has a second device that advertises PQXDH but whose KEM pre-keys the server
does not hand out (here: a device that never uploaded any -- what Alice's client
sees is the same as a server withholding them).  Alice's client refuses to
downgrade to X3DH, so that device gets nothing; her message still reaches Bob's
first device, and her own copy of the message says, in the conversation, which
device it did not reach."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest

from client_tk.core.keys import KeyManager
from client_tk.core.store import LocalStore
from common.crypto import IdentityKeyPair
from tests.gui.conftest import DIRECT_HTTP_TIMEOUT, PASSWORD, Mailbox, pump, screenshot
from tests.gui.test_outbox_panel import open_group, say
from tests.gui.test_two_clients import body_text, register

pytestmark = pytest.mark.gui


def add_device_without_kem_keys(server: str, app: Any, folder: Path) -> str:
    """Log ``app``'s user in as a new device and publish signed keys that advertise PQXDH but
    no KEM pre-key (straight over HTTP); returns the new device id."""
    client = app.worker.client
    login = httpx.post(f"{server}/_matrix/client/v3/login", json={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": client.user_id},
        "password": PASSWORD}, timeout=DIRECT_HTTP_TIMEOUT)
    login.raise_for_status()
    device_id, token = login.json()["device_id"], login.json()["access_token"]
    scratch = LocalStore(folder)
    scratch.unlock(secrets.token_bytes(32))
    # Its own device key, certified by the account key (what a paired device publishes).
    keys = KeyManager(IdentityKeyPair.generate(), client.user_id, device_id, account=client.account.keys.identity)
    keys.rotate_spk(scratch, 0)
    body = {"device_keys": keys.device_keys(), "one_time_keys": keys.generate_otks(scratch, 5)}
    scratch.close()
    httpx.post(f"{server}/_matrix/client/v3/keys/upload", json=body,
               headers={"Authorization": f"Bearer {token}"}, timeout=DIRECT_HTTP_TIMEOUT).raise_for_status()
    return str(device_id)


def test_own_message_shows_the_devices_it_did_not_reach(gui_server: str, make_app: Any, tk_root: Any,
                                                         mailbox: Mailbox, xdisplay: str,
                                                         tmp_path: Path) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")
    open_group(alice, bob, tk_root, bob_email, "Reach talk")
    say(alice, tk_root, "everyone reads this")
    pump(tk_root, lambda: "everyone reads this" in body_text(bob), what="bob reads the first message")
    assert "Not delivered" not in body_text(alice)

    lost = add_device_without_kem_keys(gui_server, bob, tmp_path / "bob-kemless")
    core = alice.worker.client
    pump(tk_root, lambda: bob.user_id in core.directory.outdated(), what="alice told of bob's new device")
    say(alice, tk_root, "one device misses this")
    pump(tk_root, lambda: "one device misses this" in body_text(bob), what="bob's first device reads it")
    mark = f"⚠ Not delivered to {alice.display_name(bob.user_id)} ({lost})"
    text = pump(tk_root, lambda: mark in body_text(alice) and body_text(alice), what="the mark on alice's message")
    # The mark belongs to the message that missed the device, not to the one before it.
    assert text.index("everyone reads this") < text.index("one device misses this") < text.index(mark)
    assert text.count("Not delivered") == 1
    assert "Not delivered" not in body_text(bob)  # only the sender is told
    screenshot(xdisplay, "unreachable_mark")

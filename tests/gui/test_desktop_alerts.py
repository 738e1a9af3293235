# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Alerts reach the desktop: a message in a chat that is not open becomes a desktop notification
(over a real D-Bus session bus, to a notification server as a desktop runs one) and sets the
window's urgency hint, which the focus clears; a newly paired device shows the history without
alerting for any of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from client_tk import bridge as b
from client_tk.views.main import MainView
from client_tk.widgets.desktop import is_urgent
from tests.gui.conftest import PASSWORD, Mailbox, pump, screenshot
from tests.gui.test_outbox_panel import open_group, say
from tests.gui.test_two_clients import body_text, register, walk
from tests.support.notifications import NotificationDesktop

pytestmark = pytest.mark.gui


@pytest.fixture
def desktop(monkeypatch: pytest.MonkeyPatch) -> Iterator[NotificationDesktop]:
    running = NotificationDesktop()
    running.start()
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", running.address)
    yield running
    running.stop()


def test_desktop_notification_urgency_and_no_alerts_for_history(
        desktop: NotificationDesktop, gui_server: str, make_app: Any, tk_root: Any, mailbox: Mailbox,
        xdisplay: str) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")
    assert bob.desktop.available
    ping = open_group(alice, bob, tk_root, bob_email, "Ping")
    other = open_group(alice, bob, tk_root, bob_email, "Other")
    pump(tk_root, lambda: bob.screen.conversation.room.room_id == other, what="bob in Other")
    alice.screen.room_list.select(ping)
    pump(tk_root, lambda: alice.screen.conversation.room.room_id == ping
         and alice.screen.conversation.messages.loaded, what="alice in Ping")
    alice.screen.conversation.entry.focus_force()  # the focus is in alice's window, not bob's
    pump(tk_root, lambda: alice.focused() and not bob.focused(), what="alice's window focused")

    say(alice, tk_root, "knock knock")
    pump(tk_root, lambda: any(s.body == "knock knock" for s in desktop.shown), what="a desktop notification")
    shown = next(s for s in desktop.shown if s.body == "knock knock")
    assert shown.app_name == "Parley"
    assert shown.summary == f"{bob.display_name(alice.user_id)} in Ping"
    assert bob.urgent and is_urgent(bob.window)
    pump(tk_root, lambda: bob.window.title().startswith("(1) Parley"), what="the count in the title")
    assert not any(s.body == "knock knock" for s in desktop.shown if s is not shown)  # one, from bob
    screenshot(xdisplay, "desktop_01_notified")
    bob.screen.room_list.select(ping)
    bob.screen.conversation.entry.focus_force()
    pump(tk_root, lambda: not bob.urgent, what="the focus clears the hint")
    assert not is_urgent(bob.window)

    # bob pairs a new device: the history comes in, no alert for any of it
    before = len(desktop.shown)
    new = make_app(gui_server, x=320, name="bob-new")
    auth = new.screen
    auth.tabs.select(2)
    auth.pair_user.set(bob.user_id)
    auth.pair_password.set(PASSWORD)
    auth.pair_button.invoke()
    pump(tk_root, lambda: len(auth.pair_code.cget("text").replace(" ", "")) == 8, what="pairing code")
    bob.send(b.ApprovePairing(auth.pair_code.cget("text")))
    pump(tk_root, lambda: bob.security.sas is not None and new.security.sas is not None,
         timeout=120, what="both devices show the security code")
    for app in (bob, new):  # the user compares the codes and confirms on both
        next(w for w in walk(app.security.sas) if w.winfo_class() == "TButton"
             and w.cget("text") == "They match").invoke()
    pump(tk_root, lambda: isinstance(new.screen, MainView), timeout=120, what="the new device in")
    pump(tk_root, lambda: {r.room_id for r in new.rooms.rooms} >= {ping, other}, what="its rooms")
    new.screen.room_list.select(ping)
    pump(tk_root, lambda: new.screen.conversation is not None and "knock knock" in body_text(new),
         timeout=60, what="the history on the new device")
    assert not new.alerts and len(desktop.shown) == before

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Read state between two running clients: unread badges and the unread total in the title,
opening a chat marks it read (and the badge does not come back), ✓✓ survives reopening the
chat, nothing is marked read while the window is hidden (it is when the window is back), an
alert per new message, and a deleted message is gone from the quotes that reply to it."""

from __future__ import annotations

from typing import Any

import pytest

from client_tk import bridge as b
from tests.gui.conftest import Mailbox, pump, screenshot
from tests.gui.test_outbox_panel import open_group, say
from tests.gui.test_two_clients import body_text, register

pytestmark = pytest.mark.gui


def room_info(app: Any, room_id: str) -> b.RoomInfo:
    return next(r for r in app.rooms.rooms if r.room_id == room_id)


def own_event(app: Any, text: str) -> str | None:
    view = app.screen.conversation.messages
    return next((m.event_id for m in view.messages.values() if m.body == text and m.sender == app.user_id), None)


def ticks(app: Any, event_id: str) -> str:
    view = app.screen.conversation.messages
    ranges = view.text.tag_ranges("st:" + event_id)
    return str(view.text.get(ranges[0], ranges[1])).strip() if ranges else ""


def test_badges_ticks_hidden_window_and_deleted_quotes(gui_server: str, make_app: Any, tk_root: Any,
                                                       mailbox: Mailbox, xdisplay: str) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")
    ping = open_group(alice, bob, tk_root, bob_email, "Ping")
    other = open_group(alice, bob, tk_root, bob_email, "Other")
    bob_rooms = bob.screen.room_list
    pump(tk_root, lambda: bob.screen.conversation.room.room_id == other, what="bob in Other")
    alice.screen.room_list.select(ping)
    pump(tk_root, lambda: alice.screen.conversation.room.room_id == ping
         and alice.screen.conversation.messages.loaded, what="alice in Ping")
    alerts_before = len(bob.alerts)

    # two messages to a chat bob does not have open: a badge, the total in the title, two alerts
    say(alice, tk_root, "first news")
    pump(tk_root, lambda: own_event(alice, "first news"), what="the first sent")  # two sends would race
    say(alice, tk_root, "second news")
    pump(tk_root, lambda: room_info(bob, ping).unread == 2, what="bob's unread count")
    pump(tk_root, lambda: ping in bob_rooms.rows and bob_rooms.rows[ping]["badge"] is not None
         and bob_rooms.rows[ping]["badge"].cget("text").strip() == "2", what="badge 2")
    assert bob.window.title().startswith("(2) Parley")
    assert bob_rooms.order_ids()[0] == ping  # the latest activity on top
    assert bob_rooms.rows[ping]["preview"].cget("text").endswith("second news")
    pump(tk_root, lambda: len(bob.alerts) - alerts_before == 2, what="two alerts")
    assert all("in Ping" in title for title, _ in list(bob.alerts)[alerts_before:])
    screenshot(xdisplay, "read_01_badge")

    # bob opens it: read at once, and alice's ticks turn ✓✓
    bob_rooms.select(ping)
    pump(tk_root, lambda: bob_rooms.rows[ping]["badge"] is None and room_info(bob, ping).unread == 0,
         what="badge gone")
    assert not bob.window.title().startswith("(")
    second = own_event(alice, "second news")
    assert second is not None
    pump(tk_root, lambda: ticks(alice, second) == "✓✓", what="alice sees ✓✓")
    # something in Other: bob's next syncs do not bring Ping's badge back
    alice.screen.room_list.select(other)
    pump(tk_root, lambda: alice.screen.conversation.room.room_id == other, what="alice in Other")
    say(alice, tk_root, "elsewhere")
    pump(tk_root, lambda: room_info(bob, other).unread == 1 and bob.window.title().startswith("(1)"),
         what="Other unread")
    assert room_info(bob, ping).unread == 0 and bob_rooms.rows[ping]["badge"] is None
    # alice reopens Ping: the ✓✓ is still there
    alice.screen.room_list.select(ping)
    pump(tk_root, lambda: alice.screen.conversation.room.room_id == ping
         and alice.screen.conversation.messages.loaded and own_event(alice, "second news"), what="Ping again")
    pump(tk_root, lambda: ticks(alice, second) == "✓✓", what="✓✓ after reopening")

    # bob hides his window: a message in the open chat is not marked read, but alerted
    bob.window.withdraw()
    pump(tk_root, lambda: not bob.visible(), what="bob's window hidden")
    alerts_before = len(bob.alerts)
    say(alice, tk_root, "are you there?")
    bob_view = bob.screen.conversation.messages
    pump(tk_root, lambda: "are you there?" in body_text(bob), what="bob got it hidden")
    there = own_event(alice, "are you there?")
    assert there is not None
    assert bob_view.marked != there  # no receipt from a hidden window
    pump(tk_root, lambda: len(bob.alerts) > alerts_before, what="an alert while hidden")
    bob.window.deiconify()
    pump(tk_root, lambda: bob_view.marked == there, what="marked read when shown again")
    pump(tk_root, lambda: ticks(alice, there) == "✓✓", what="alice sees it read")

    # bob replies to "first news"; alice deletes it: bob's quote no longer shows it
    first = next(m for m in bob_view.messages.values() if m.body == "first news")
    bob.screen.conversation.reply(first)
    say(bob, tk_root, "replying to the first")
    pump(tk_root, lambda: "replying to the first" in body_text(alice), what="alice gets the reply")
    pump(tk_root, lambda: body_text(bob).count("first news") == 2, what="bob's reply quotes it")
    alice.send(b.DeleteMessage(ping, first.event_id))
    pump(tk_root, lambda: "first news" not in body_text(bob), what="gone from bob's quote too")
    assert "a deleted message" in body_text(bob)
    pump(tk_root, lambda: "first news" not in body_text(alice), what="and from alice's")
    screenshot(xdisplay, "read_02_deleted_quote")

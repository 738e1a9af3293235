# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Editing one's last message (Up in the composer) and reacting (menu, then the chips), between
two real windows on a real homeserver."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from tests.gui.conftest import Mailbox, pump, screenshot
from tests.gui.test_outbox_panel import open_group, say
from tests.gui.test_two_clients import body_text, register

pytestmark = pytest.mark.gui


def event_of(app: Any, body: str) -> str:
    view = app.screen.conversation.messages
    return next(e for e, m in view.messages.items() if m.body == body)


def click_chip(app: Any, event_id: str, key: str) -> None:
    """A click on the chip of ``key`` under ``event_id``, where it is drawn."""
    view = app.screen.conversation.messages
    name = next(n for n, (e, k) in view._chips.items() if (e, k) == (event_id, key) and view.text.tag_ranges(n))
    view.text.see(view.text.tag_ranges(name)[0])
    view.text.update_idletasks()
    x, y, w, h = view.text.bbox(view.text.tag_ranges(name)[0])
    view._chip_clicked(SimpleNamespace(x=x + w // 2, y=y + h // 2))


def test_edit_last_message_and_react(gui_server: str, make_app: Any, tk_root: Any,
                                     mailbox: Mailbox, xdisplay: str) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")
    open_group(alice, bob, tk_root, bob_email, "Lunch")
    say(alice, tk_root, "meet at 5")
    pump(tk_root, lambda: "meet at 5" in body_text(bob), what="bob reads it")

    # Up in the empty composer edits the last own message; Enter saves it
    conversation = alice.screen.conversation
    conversation.entry.focus_force()
    conversation.entry.event_generate("<Up>")
    pump(tk_root, lambda: conversation.editing is not None, what="editing")
    assert conversation.entry.get("1.0", "end").strip() == "meet at 5"
    assert "Editing" in conversation.reply_label.cget("text")
    conversation.entry.delete("1.0", "end")
    conversation.entry.insert("1.0", "meet at 6")
    conversation.entry.event_generate("<Return>")
    for app in (alice, bob):
        pump(tk_root, lambda a=app: "meet at 6  (edited)" in body_text(a), what="shown edited")
        assert "meet at 5" not in body_text(app)
    assert conversation.editing is None and not conversation.entry.get("1.0", "end").strip()
    room = conversation.room.room_id
    pump(tk_root, lambda: alice.screen.room_list.rows[room]["preview"].cget("text") == "You: meet at 6",
         what="the list's preview follows the edit")
    screenshot(xdisplay, "edits_01_edited")

    # bob reacts from the message's menu; alice sees the chip and adds hers by clicking it
    target = event_of(bob, "meet at 6")
    view = bob.screen.conversation.messages
    import ttkbootstrap as ttk
    menu = ttk.Menu(view, tearoff=False)
    view._edit_menu(menu, view.messages[target])
    assert menu.index("end") is None  # not bob's message: nothing to edit
    view._react_menu(menu, view.messages[target])
    react = view.nametowidget(menu.entrycget("React", "menu"))
    assert react.entrycget(0, "label") == "👍"
    react.invoke(0)
    pump(tk_root, lambda: alice.screen.conversation.messages.chip_names(target) == ["👍 1"], what="alice sees 👍 1")
    click_chip(alice, target, "👍")
    for app in (alice, bob):
        pump(tk_root, lambda a=app: a.screen.conversation.messages.chip_names(target) == ["👍 2"],
             what="👍 2 on both")
    mine = alice.screen.conversation.messages
    name = next(n for n, (e, k) in mine._chips.items() if e == target and mine.text.tag_ranges(n))
    assert "chip-mine" in mine.text.tag_names(mine.text.tag_ranges(name)[0])
    screenshot(xdisplay, "edits_02_reactions")

    # bob takes his back by clicking his chip
    click_chip(bob, target, "👍")
    for app in (alice, bob):
        pump(tk_root, lambda a=app: a.screen.conversation.messages.chip_names(target) == ["👍 1"],
             what="back to 👍 1")

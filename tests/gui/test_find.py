# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Finding things at the default 1000x680 window: Ctrl+F shows the find bar (it was squeezed
out), Ctrl+Shift+F searches every conversation's messages in the local store and opens the hit,
Ctrl+K jumps to a conversation by name, F1 lists the shortcuts."""

from __future__ import annotations

from typing import Any

import pytest

from client_tk import bridge as b
from client_tk.views.search import HelpDialog, QuickSwitcher, SearchDialog
from tests.gui.conftest import Mailbox, pump, screenshot
from tests.gui.test_two_clients import register

pytestmark = pytest.mark.gui


def dialog_of(app: Any, kind: type[Any]) -> Any:
    return next((w for w in app.window.winfo_children() if isinstance(w, kind) and w.winfo_exists()), None)


def keys(root: Any, widget: Any, sequence: str) -> None:
    widget.focus_force()
    root.update()
    widget.event_generate(sequence)
    root.update()


def test_find_search_all_and_the_quick_switcher(gui_server: str, make_app: Any, tk_root: Any,
                                                mailbox: Mailbox, xdisplay: str) -> None:
    app = make_app(gui_server, name="dora")
    app.window.geometry("1000x680+0+0")
    register(app, tk_root, mailbox, "dora")
    for name in ("Holidays", "Work"):
        app.send(b.NewGroup(name))
    pump(tk_root, lambda: {r.title for r in app.rooms.rooms} >= {"Holidays", "Work"}, what="two groups")
    ids = {r.title: r.room_id for r in app.rooms.rooms}
    app.send(b.SendText(ids["Holidays"], "the blue boat at the lake"))
    app.send(b.SendText(ids["Work"], "blue report due on Friday"))
    app.send(b.SendText(ids["Work"], "nothing to see"))
    pump(tk_root, lambda: all(r.preview for r in app.rooms.rooms if r.title in ids), what="messages stored")

    # Ctrl+F in the composer of an open chat: the find bar shows, inside the window
    app.screen.room_list.select(ids["Work"])
    pump(tk_root, lambda: app.screen.conversation is not None and app.screen.conversation.messages.loaded,
         what="Work open")
    chat = app.screen.conversation
    keys(tk_root, chat.entry, "<Control-f>")
    bar = chat.messages.search_bar
    pump(tk_root, lambda: bar.winfo_ismapped() and bar.winfo_height() > 10, what="find bar shown")
    assert bar.winfo_rooty() + bar.winfo_height() <= app.window.winfo_rooty() + app.window.winfo_height()
    assert chat.find_button.winfo_ismapped() and chat.find_button.winfo_width() > 10
    pump(tk_root, lambda: chat.messages.search_entry.focus_get() is chat.messages.search_entry,
         what="the find field has the focus")
    chat.messages.search_text.set("blue")
    pump(tk_root, lambda: chat.messages.search_count.cget("text") == "1 of 1", what="one match here")
    screenshot(xdisplay, "find_01_in_chat")

    # Ctrl+Shift+F: every conversation
    keys(tk_root, chat.entry, "<Control-F>")
    search = pump(tk_root, lambda: dialog_of(app, SearchDialog), what="search dialog")
    search.text.set("BLUE")
    pump(tk_root, lambda: len(search.results) == 2, what="a hit in each conversation")
    assert {m.room_id for m in search.results} == {ids["Holidays"], ids["Work"]}
    rows = [search.tree.item(i, "values") for i in search.tree.get_children()]
    assert {r[0] for r in rows} == {"Holidays", "Work"}
    screenshot(xdisplay, "find_02_all_conversations")
    hit = next(m for m in search.results if m.room_id == ids["Holidays"])
    search.tree.selection_set(hit.event_id)
    search.choose()
    pump(tk_root, lambda: app.screen.conversation.room.room_id == ids["Holidays"]
         and app.screen.conversation.messages.loaded, what="the hit's conversation opened")
    view = app.screen.conversation.messages
    pump(tk_root, lambda: view.text.tag_ranges("current"), what="the hit marked")
    marked = view.text.get(*view.text.tag_ranges("current")[:2])
    assert "the blue boat" in marked

    # Ctrl+K: by name
    keys(tk_root, app.screen.conversation.entry, "<Control-k>")
    switcher = pump(tk_root, lambda: dialog_of(app, QuickSwitcher), what="quick switcher")
    assert app.screen.conversation.entry.get("1.0", "end").strip() == ""  # Text's own Ctrl+K did not run
    switcher.text.set("wo")
    assert [switcher.tree.item(i, "values")[1] for i in switcher.tree.get_children()] == ["Work"]
    switcher.entry.event_generate("<Return>")
    pump(tk_root, lambda: app.screen.conversation.room.room_id == ids["Work"], what="Work via Ctrl+K")

    # Alt+Up / Alt+Down step through the list; F1 shows the shortcuts
    order = app.screen.room_list.order_ids()
    keys(tk_root, app.screen.conversation.entry, "<Alt-Down>")
    at = order.index(ids["Work"])
    pump(tk_root, lambda: app.screen.conversation.room.room_id == order[(at + 1) % len(order)], what="next chat")
    keys(tk_root, app.screen.conversation.entry, "<F1>")
    help_dialog = pump(tk_root, lambda: dialog_of(app, HelpDialog), what="help")
    assert ("Ctrl+K", "Jump to a conversation") in help_dialog.lines
    help_dialog.destroy()

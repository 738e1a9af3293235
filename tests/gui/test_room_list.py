# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The conversation list with 1,000 conversations: only the visible rows are widgets, every
conversation is reachable (scrollbar, mouse wheel, next/previous), the order is favourites
then last activity, and a new snapshot reconfigures rows instead of rebuilding the list."""

from __future__ import annotations

from typing import Any

import pytest

from client_tk import bridge as b
from client_tk.views.main import MainView
from client_tk.views.rooms import ROW_H
from tests.gui.conftest import pump

pytestmark = pytest.mark.gui
ME = "@me:example.test"
COUNT = 1000
BASE_TS = 1_700_000_000_000


def room(i: int, *, ts: int | None = None, unread: int = 0, favourite: bool = False,
         preview: str | None = None) -> b.RoomInfo:
    return b.RoomInfo(f"!r{i:04d}:example.test", f"Chat {i:04d}", False, (ME, f"@p{i}:example.test"), (),
                      ME, unread, favourite, last_ts=BASE_TS + i * 1000 if ts is None else ts,
                      preview=f"message {i}" if preview is None else preview, last_sender=f"@p{i}:example.test")


def logged_in(make_app: Any, tk_root: Any) -> Any:
    app = make_app()
    app.window.geometry("1000x680")
    app.bus.publish(b.LoggedIn(ME, "DEVICE"))
    pump(tk_root, lambda: isinstance(app.screen, MainView) and app.screen.winfo_ismapped(), what="main view")
    return app


def snapshot(app: Any, tk_root: Any, rooms: list[b.RoomInfo]) -> None:
    renders = app.screen.room_list.renders
    app.bridge.post(b.RoomsSnapshot(tuple(rooms), ()))
    pump(tk_root, lambda: app.screen.room_list.renders > renders, what="snapshot rendered")


def test_a_thousand_conversations_scroll_with_few_widgets(make_app: Any, tk_root: Any) -> None:
    app = logged_in(make_app, tk_root)
    rooms = [room(i) for i in range(COUNT)]
    snapshot(app, tk_root, rooms)
    tk_root.update()
    room_list = app.screen.room_list
    height = room_list.viewport.winfo_height()
    assert height > 5 * ROW_H
    # only what fits is built: a pool of rows, not a thousand frames
    frames = room_list.viewport.winfo_children()
    assert len(frames) <= height // ROW_H + 3
    assert len(room_list.rows) <= height // ROW_H + 2
    # newest activity first
    assert room_list.order_ids()[:3] == [rooms[999].room_id, rooms[998].room_id, rooms[997].room_id]
    assert rooms[999].room_id in room_list.rows and rooms[0].room_id not in room_list.rows
    assert room_list.rows[rooms[999].room_id]["preview"].cget("text").endswith("message 999")

    # the mouse wheel scrolls (over a row, as a user would)
    first_row = room_list.rows[rooms[999].room_id]["name"]
    first_row.event_generate("<Button-5>")
    tk_root.update()
    assert room_list.top == 3 * ROW_H and rooms[999].room_id not in room_list.rows
    first_row.event_generate("<Button-4>")
    tk_root.update()
    assert room_list.top == 0
    # the scrollbar reaches the oldest conversation
    room_list.scrollbar.set(*room_list.scrollbar.get())
    room_list.yview("moveto", "1.0")
    tk_root.update()
    assert rooms[0].room_id in room_list.rows
    first, last = (float(x) for x in room_list.scrollbar.get())
    assert last == pytest.approx(1.0) and first > 0.9
    assert len(room_list.viewport.winfo_children()) == len(frames)

    # opening the oldest chat by clicking its row
    room_list.rows[rooms[0].room_id]["name"].event_generate("<Button-1>")
    pump(tk_root, lambda: app.screen.conversation is not None, what="chat opened")
    assert app.screen.conversation.room.room_id == rooms[0].room_id
    assert app.screen.conversation.title.cget("text") == "Chat 0000"


def test_a_snapshot_updates_rows_in_place(make_app: Any, tk_root: Any) -> None:
    app = logged_in(make_app, tk_root)
    rooms = [room(i) for i in range(COUNT)]
    snapshot(app, tk_root, rooms)
    room_list = app.screen.room_list
    widgets = [str(w) for w in room_list.viewport.winfo_children()]
    looks = {id(row): row.look for row in room_list.pool}

    # a message arrives in an old conversation: it jumps to the top with a badge
    rooms[5] = room(5, ts=BASE_TS + 10_000_000, unread=2, preview="hello again")
    snapshot(app, tk_root, rooms)
    assert room_list.order_ids()[0] == rooms[5].room_id
    row = room_list.rows[rooms[5].room_id]
    assert row["badge"] is not None and row["badge"].cget("text").strip() == "2"
    assert row["badge"].winfo_ismapped()
    assert str(row["name"].cget("font")).endswith("bold") or "bold" in str(row["name"].cget("font"))
    assert row["preview"].cget("text").endswith("hello again")
    # the same widgets, reconfigured (the rows shifted down by one, nothing rebuilt)
    assert [str(w) for w in room_list.viewport.winfo_children()] == widgets
    assert sum(1 for r in room_list.pool if looks.get(id(r)) != r.look) <= len(room_list.pool)

    # a favourite goes above newer activity
    rooms[10] = room(10, favourite=True)
    snapshot(app, tk_root, rooms)
    assert room_list.order_ids()[:2] == [rooms[10].room_id, rooms[5].room_id]
    assert room_list.rows[rooms[10].room_id]["name"].cget("text").startswith("★ ")

    # selecting it clears its badge; next unread goes to the unread one
    room_list.select(rooms[10].room_id)
    room_list.step(1, unread_only=True)
    pump(tk_root, lambda: app.screen.conversation is not None
         and app.screen.conversation.room.room_id == rooms[5].room_id, what="next unread opened")
    assert room_list.rows[rooms[5].room_id]["badge"] is None

    # a conversation that went away leaves the list (and the pool stays the same size)
    snapshot(app, tk_root, [r for r in rooms if r.room_id != rooms[5].room_id])
    assert rooms[5].room_id not in room_list and rooms[5].room_id not in room_list.rows
    assert app.screen.conversation is None
    assert [str(w) for w in room_list.viewport.winfo_children()] == widgets

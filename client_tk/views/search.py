# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Finding things: search across every conversation (the local encrypted store), the quick
switcher (Ctrl+K) and the keyboard-shortcut help (F1).  Lists are ``ttk.Treeview``s, which
draw only the visible lines however many there are."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.views.messages import clock_text
from client_tk.views.rooms import short, sort_key
from client_tk.views.shortcuts import LOCAL_KEYS, SHORTCUTS

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

SEARCH_DELAY_MS = 250  # wait for a pause in typing before reading the whole store


class _Finder(ttk.Toplevel):
    def __init__(self, app: ParleyApp, title: str, columns: tuple[tuple[str, str, int], ...]) -> None:
        super().__init__(title=title, master=app.window)
        self.app = app
        self.transient(app.window)
        self.geometry("640x420")
        body = ttk.Frame(self, padding=12)
        body.pack(fill="both", expand=True)
        self.text = ttk.StringVar()
        self.entry = ttk.Entry(body, textvariable=self.text)
        self.entry.pack(fill="x")
        self.status = ttk.Label(body, text="", bootstyle="secondary")
        self.status.pack(anchor="w", pady=(4, 4))
        self.tree = ttk.Treeview(body, columns=[c[0] for c in columns], show="headings", selectmode="browse")
        for name, heading, width in columns:
            self.tree.heading(name, text=heading, anchor="w")
            self.tree.column(name, width=width, stretch=name == columns[-1][0], anchor="w")
        self.tree.pack(fill="both", expand=True)
        self.entry.bind("<Down>", lambda e: self._move(1))
        self.entry.bind("<Up>", lambda e: self._move(-1))
        self.entry.bind("<Return>", lambda e: self.choose())
        self.tree.bind("<Double-1>", lambda e: self.choose())
        self.tree.bind("<Return>", lambda e: self.choose())
        self.bind("<Escape>", lambda e: self.destroy())
        self.entry.focus_set()

    def _move(self, step: int) -> str:
        items = self.tree.get_children()
        if items:
            current = self.tree.selection()
            at = items.index(current[0]) + step if current else 0
            item = items[max(0, min(len(items) - 1, at))]
            self.tree.selection_set(item)
            self.tree.see(item)
        return "break"

    def _fill(self, rows: list[tuple[str, tuple[str, ...]]]) -> None:
        self.tree.delete(*self.tree.get_children())
        for iid, values in rows:
            self.tree.insert("", "end", iid=iid, values=values)
        if rows:
            self.tree.selection_set(rows[0][0])

    def choose(self) -> None:
        raise NotImplementedError


class SearchDialog(_Finder):
    """Type words; every conversation's messages that contain them, newest first."""

    def __init__(self, app: ParleyApp, on_open: Callable[[str, str], None]) -> None:
        super().__init__(app, "Search all conversations",
                         (("room", "Conversation", 150), ("from", "From", 110), ("when", "When", 90),
                          ("text", "Message", 260)))
        self.on_open = on_open
        self.hits: dict[str, b.SearchResults] = {}
        self.results: tuple[Any, ...] = ()
        self._job: str | None = None
        self._unsubscribe = app.bus.subscribe(b.SearchResults, self._results)
        self.text.trace_add("write", lambda *a: self._changed())

    def destroy(self) -> None:
        self._unsubscribe()
        super().destroy()

    def _changed(self) -> None:
        if self._job is not None:
            self.after_cancel(self._job)
        self._job = self.after(SEARCH_DELAY_MS, self._search)

    def _search(self) -> None:
        self._job = None
        text = self.text.get()
        if text.strip():
            self.status.configure(text="Searching…")
            self.app.send(b.Search("", text))
        else:
            self._fill([])
            self.status.configure(text="")

    def _results(self, event: b.SearchResults) -> None:
        if event.room_id or event.text != self.text.get():
            return
        titles = {r.room_id: r.title for r in self.app.rooms.rooms}
        self.results = tuple(m for m in event.hits if m.room_id in titles)
        self._fill([(m.event_id, (short(titles[m.room_id], 24), self.app.display_name(m.sender),
                                  clock_text(m.ts), short(m.body, 80))) for m in self.results])
        count = len(self.results)
        self.status.configure(text="no messages found" if not count else
                              f"{count} message{'' if count == 1 else 's'} (newest first)")

    def choose(self) -> None:
        selected = self.tree.selection()
        hit = next((m for m in self.results if selected and m.event_id == selected[0]), None)
        if hit is not None:
            self.destroy()
            self.on_open(hit.room_id, hit.event_id)


class QuickSwitcher(_Finder):
    """Ctrl+K: type part of a name, Enter opens it (the unread and the recent first)."""

    def __init__(self, app: ParleyApp, on_open: Callable[[str], None]) -> None:
        super().__init__(app, "Jump to a conversation", (("unread", "", 40), ("title", "Conversation", 520)))
        self.on_open = on_open
        self.text.trace_add("write", lambda *a: self.refresh())
        self.refresh()

    def matches(self) -> list[b.RoomInfo]:
        needle = self.text.get().strip().casefold()
        rooms = sorted(self.app.rooms.rooms, key=sort_key)
        if needle:
            starts = [r for r in rooms if r.title.casefold().startswith(needle)]
            inside = [r for r in rooms if needle in r.title.casefold() and r not in starts]
            rooms = starts + inside
        return rooms[:200]

    def refresh(self) -> None:
        self._fill([(r.room_id, (str(r.unread) if r.unread else "", r.title)) for r in self.matches()])

    def choose(self) -> None:
        selected = self.tree.selection()
        if selected:
            room_id = selected[0]
            self.destroy()
            self.on_open(room_id)


class HelpDialog(ttk.Toplevel):
    def __init__(self, app: ParleyApp) -> None:
        super().__init__(title="Keyboard shortcuts", master=app.window)
        self.transient(app.window)
        body = ttk.Frame(self, padding=16)
        body.pack(fill="both", expand=True)
        self.lines: list[tuple[str, str]] = [(keys, what) for _s, keys, what, _a in SHORTCUTS] + list(LOCAL_KEYS)
        for row, (keys, what) in enumerate(self.lines):
            ttk.Label(body, text=keys, font=("TkDefaultFont", 10, "bold")).grid(row=row, column=0, sticky="w",
                                                                                 padx=(0, 16), pady=2)
            ttk.Label(body, text=what).grid(row=row, column=1, sticky="w")
        ttk.Button(body, text="Close", command=self.destroy).grid(row=len(self.lines), column=1, sticky="e",
                                                                  pady=(12, 0))
        self.bind("<Escape>", lambda e: self.destroy())

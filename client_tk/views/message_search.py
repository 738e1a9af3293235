# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Find in a conversation (Ctrl+F): the bar above the messages, the matches the core found
highlighted in the text, Enter/Shift+Enter (or the arrows) to step through them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import ttkbootstrap as ttk

from client_tk import bridge as b

if TYPE_CHECKING:
    from client_tk.app import ParleyApp


class SearchMixin:
    """The search half of :class:`~client_tk.views.messages.MessageView`."""

    app: ParleyApp
    room_id: str
    text: Any
    body: Any
    matches: list[tuple[str, str]]
    match_index: int
    wanted: str | None

    def _search_bar(self) -> None:
        self.search_bar = ttk.Frame(cast(Any, self), padding=(6, 4))
        self.search_text = ttk.StringVar()
        entry = ttk.Entry(self.search_bar, textvariable=self.search_text, width=30)
        entry.pack(side="left")
        entry.bind("<Return>", lambda e: self.search_step(1))
        entry.bind("<Shift-Return>", lambda e: self.search_step(-1))
        entry.bind("<Escape>", lambda e: self.close_search())
        self.search_entry = entry
        ttk.Button(self.search_bar, text="▲", width=3, command=lambda: self.search_step(-1),
                   bootstyle="secondary").pack(side="left", padx=(6, 0))
        ttk.Button(self.search_bar, text="▼", width=3, command=lambda: self.search_step(1),
                   bootstyle="secondary").pack(side="left", padx=2)
        self.search_count = ttk.Label(self.search_bar, text="", bootstyle="secondary")
        self.search_count.pack(side="left", padx=6)
        ttk.Button(self.search_bar, text="✕", width=3, bootstyle="link", command=self.close_search
                   ).pack(side="right")
        self.search_text.trace_add("write", lambda *a: self._search_changed())

    # ------------------------------------------------------------ search
    def open_search(self) -> None:
        if not self.search_bar.winfo_ismapped():
            # before the message body: packed after it, the bar got no room at 1000x680
            self.search_bar.pack(side="top", fill="x", before=self.body)
        self.search_entry.focus_set()
        self.search_entry.select_range(0, "end")

    def close_search(self) -> None:
        self.search_bar.pack_forget()
        self.text.tag_remove("match", "1.0", "end")
        self.text.tag_remove("current", "1.0", "end")
        self.matches, self.match_index = [], -1

    def _search_changed(self) -> None:
        self.app.send(b.Search(self.room_id, self.search_text.get()))

    def _results(self, event: b.SearchResults) -> None:
        if event.room_id != self.room_id or event.text != self.search_text.get():
            return
        t = self.text
        t.tag_remove("match", "1.0", "end")
        t.tag_remove("current", "1.0", "end")
        self.matches = []
        needle = event.text
        for event_id in event.event_ids:
            ranges = t.tag_ranges("ev:" + event_id)
            if not ranges or not needle:
                continue
            start: Any = ranges[0]
            stop = ranges[-1]
            while True:
                count = ttk.IntVar()
                pos = t.search(needle, start, stopindex=stop, nocase=True, count=count)
                if not pos or not count.get():
                    break
                end = f"{pos} +{count.get()}c"
                if "body" in t.tag_names(pos):
                    t.tag_add("match", pos, end)
                    self.matches.append((pos, t.index(end)))
                start = end
        self.match_index = len(self.matches)
        self.search_step(-1)

    def show_event(self, event_id: str) -> None:
        """Scroll to a message (a search hit from another conversation) and mark it."""
        self.wanted = event_id
        ranges = self.text.tag_ranges("ev:" + event_id)
        if not ranges:
            return  # still loading: shown when its block is written
        self.wanted = None
        self.text.tag_remove("current", "1.0", "end")
        self.text.tag_add("current", ranges[0], ranges[-1])
        self.text.see(ranges[0])

    def search_step(self, direction: int) -> None:
        if not self.matches:
            self.search_count.configure(text="no matches" if self.search_text.get() else "")
            return
        self.match_index = (self.match_index + direction) % len(self.matches)
        start, end = self.matches[self.match_index]
        self.text.tag_remove("current", "1.0", "end")
        self.text.tag_add("current", start, end)
        self.text.see(start)
        self.search_count.configure(text=f"{self.match_index + 1} of {len(self.matches)}")

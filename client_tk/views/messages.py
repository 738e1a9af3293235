# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The message view: one read-only ``ttk.Text`` (plain text, never markup).

Each message is a block tagged ``ev:<event id>``: sender, time, read state,
an optional reply quote, then the body, an image thumbnail or a file card.
Long histories are inserted in slices (at most :data:`INSERT_BATCH` messages
or :data:`SLICE_S` seconds each, one per ``after`` tick) so the window keeps
answering; live messages scroll to the end and send their read receipt once per
burst, not once each.  Ctrl+F searches through the core and
highlights matches (Enter/Shift+Enter or the arrows step through them).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk
from PIL import Image, ImageTk

from client_tk import bridge as b
from client_tk.core.events import (
    DecryptionFailed,
    Message,
    MessageChanged,
    MessageDeleted,
    MessageReceived,
    ReceiptUpdated,
)
from client_tk.views.message_relations import RelationsMixin
from client_tk.views.message_search import SearchMixin
from client_tk.widgets.avatar import colour_for

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

INSERT_BATCH = 150  # at most this many history messages per slice ...
SLICE_S = 0.008  # ... and for at most this long: the Tk loop answers between slices


def clock_text(ts_ms: int) -> str:
    stamp = time.localtime(ts_ms / 1000)
    if time.strftime("%Y%m%d", stamp) == time.strftime("%Y%m%d"):
        return time.strftime("%H:%M", stamp)
    return time.strftime("%d.%m. %H:%M", stamp)


LINK = re.compile(r"\bhttps?://[^\s<>\"']+[^\s<>\"'.,;:!?)\]]", re.IGNORECASE)


def split_links(text: str) -> list[tuple[str, str | None]]:
    """The text in pieces, each with its URL when it is a web link (http/https only)."""
    pieces: list[tuple[str, str | None]] = []
    at = 0
    for match in LINK.finditer(text):
        if match.start() > at:
            pieces.append((text[at:match.start()], None))
        pieces.append((match.group(0), match.group(0)))
        at = match.end()
    if at < len(text) or not pieces:
        pieces.append((text[at:], None))
    return pieces


def unreachable_text(devices: Iterable[str], display_name: Callable[[str], str]) -> str:
    """The mark on an own message that some devices could not be sent it (``user|device`` keys)."""
    named = []
    for key in devices:
        user, _, device = key.partition("|")
        named.append(f"{display_name(user)} ({device})" if device else display_name(user))
    return "⚠ Not delivered to " + ", ".join(named) + ": no secure session could be started"


def human_size(size: int) -> str:
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


class MessageView(RelationsMixin, SearchMixin, ttk.Frame):
    def __init__(self, master: Any, app: ParleyApp, room_id: str,
                 on_reply: Callable[[Message], None] | None = None,
                 on_edit: Callable[[Message], None] | None = None) -> None:
        super().__init__(master)
        self.app = app
        self.room_id = room_id
        self.on_reply = on_reply
        self.on_edit = on_edit
        self._search_bar()
        body = self.body = ttk.Frame(self)
        body.pack(side="bottom", fill="both", expand=True)
        self.text = ttk.Text(body, wrap="word", padx=12, pady=8, borderwidth=0, highlightthickness=0,
                             font=("TkDefaultFont", 11), cursor="arrow", spacing1=1, spacing3=1)
        bar = ttk.Scrollbar(body, command=self.text.yview, bootstyle="round")
        self.text.configure(yscrollcommand=bar.set, state="disabled")
        bar.pack(side="right", fill="y")
        self.text.pack(side="left", fill="both", expand=True)
        colours = app.window.style.colors if hasattr(app.window, "style") else None
        muted = getattr(colours, "secondary", "#888888")
        self.text.tag_configure("sender", font=("TkDefaultFont", 10, "bold"))
        self.text.tag_configure("time", foreground="#8a8f98", font=("TkDefaultFont", 8))
        self.text.tag_configure("status", foreground="#8a8f98", font=("TkDefaultFont", 8))
        self.text.tag_configure("read", foreground="#3498db")
        self.text.tag_configure("reply", foreground="#9aa0a6", font=("TkDefaultFont", 9, "italic"),
                                lmargin1=14, lmargin2=14)
        self.text.tag_configure("body", lmargin1=4, lmargin2=4)
        self.text.tag_configure("deleted", foreground=muted, font=("TkDefaultFont", 10, "italic"))
        self.text.tag_configure("failed", foreground="#e67e22", font=("TkDefaultFont", 10, "italic"))
        self.text.tag_configure("unreachable", foreground="#e67e22", font=("TkDefaultFont", 9, "italic"))
        self.text.tag_configure("match", background="#7a6a00", foreground="white")
        self.text.tag_configure("current", background="#f39c12", foreground="black")
        self.text.bind("<Button-3>", self._context_menu)
        self._relation_tags()
        self.text.tag_configure("link", foreground="#5dade2", underline=True)
        self.text.tag_bind("link", "<Button-1>", self._open_link)
        self.text.tag_bind("link", "<Enter>", lambda e: self.text.configure(cursor="hand2"))
        self.text.tag_bind("link", "<Leave>", lambda e: self.text.configure(cursor="arrow"))
        # the history often arrives before the view is on screen: it is read when it shows
        self.text.bind("<Map>", lambda e: self.shown_again())
        self.messages: dict[str, Message] = {}
        self.order: list[str] = []
        self.position: dict[str, int] = {}  # event id -> its index in ``order``
        self.failed: dict[str, tuple[str, str]] = {}
        self.images: dict[str, Any] = {}
        self.cards: dict[str, dict[str, Any]] = {}
        self.read_upto = -1
        self._queue: list[Message] = []
        self._pending_failed: list[tuple[str, str, str]] = []
        self._loading: str | None = None
        self._settle_job: str | None = None  # the scroll / read receipt after a burst of live messages
        self._settle_scroll = False
        self._settle_mark = False
        self.loaded = False
        self.matches: list[tuple[str, str]] = []
        self.match_index = -1
        self.wanted: str | None = None  # a message to show once the history is in
        self.marked: str | None = None  # the last event we sent a read receipt for
        self._late_receipts: list[tuple[str, str]] = []
        self.menu: Any = None
        self._shown_names: dict[str, str] = {}  # sender -> the name written in the text
        self._name_tags: set[str] = set()  # sender colour tags configured in the text
        self._subs = [
            app.bus.subscribe(b.HistoryLoaded, self._history),
            app.bus.subscribe(MessageReceived, self._received),
            app.bus.subscribe(MessageDeleted, self._deleted),
            app.bus.subscribe(MessageChanged, self._message_changed),
            app.bus.subscribe(DecryptionFailed, self._failed),
            app.bus.subscribe(ReceiptUpdated, self._receipt),
            app.bus.subscribe(b.ImageReady, self._image),
            app.bus.subscribe(b.DownloadProgress, self._progress),
            app.bus.subscribe(b.DownloadFinished, self._downloaded),
            app.bus.subscribe(b.SearchResults, self._results),
            app.bus.subscribe(b.RoomsSnapshot, lambda e: self._rename_senders()),
        ]

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        if self._loading is not None:
            self.after_cancel(self._loading)
        if self._settle_job is not None:
            self.after_cancel(self._settle_job)
        super().destroy()

    # ------------------------------------------------------------ history
    def _history(self, event: b.HistoryLoaded) -> None:
        if event.room_id == self.room_id:
            self._late_receipts.extend(event.receipts)  # applied once the blocks are written
            self.set_history(event.messages, event.undecryptable)

    def set_history(self, messages: Iterable[Message], undecryptable: Iterable[tuple[str, str, str]] = ()) -> None:
        """Replace the view's content; inserted in batches on later ticks."""
        if self._loading is not None:
            self.after_cancel(self._loading)
            self._loading = None
        self.text.configure(state="normal")
        self.text.delete("1.0", "end")
        self.text.configure(state="disabled")
        self.messages.clear()
        self.order.clear()
        self.position.clear()
        self.cards.clear()
        self._chips.clear()
        self._shown_names.clear()
        self.read_upto = -1
        self.loaded = False
        self._queue = list(messages)
        self._queue.reverse()  # pop() from the end = oldest first
        self._pending_failed = list(undecryptable)
        self._insert_batch()

    def _insert_batch(self) -> None:
        self._loading = None
        self.text.configure(state="normal")
        deadline = time.perf_counter() + SLICE_S
        for _ in range(min(INSERT_BATCH, len(self._queue))):
            self._append(self._queue.pop())
            if time.perf_counter() > deadline:
                break
        self.text.configure(state="disabled")
        self.text.see("end")
        if self._queue:
            self._loading = self.after(1, self._insert_batch)
            return
        for event_id, sender, device in self._pending_failed:
            self._add_failed(event_id, sender, device)
        self._pending_failed = []
        self.loaded = True
        late, self._late_receipts = self._late_receipts, []
        for user, event_id in late:
            self._receipt(ReceiptUpdated(self.room_id, event_id, user, 0))
        if self.wanted:
            self.show_event(self.wanted)
        self._mark_read()

    def _mark_read(self) -> None:
        """Tell the others (and the badge) that what is shown is read, if it is on screen."""
        last = next((e for e in reversed(self.order) if e in self.messages), None)
        if last is not None and last != self.marked and self.winfo_ismapped() and self.app.visible():
            self.marked = last
            self.app.send(b.MarkRead(self.room_id, last))

    def shown_again(self) -> None:
        """The window came back on screen: what arrived meanwhile is read now."""
        if self.loaded:
            self._mark_read()

    # ------------------------------------------------------------ blocks
    def _append(self, message: Message) -> None:
        """Insert one block at the end (text state must be normal)."""
        if message.event_id in self.messages:
            return
        self.messages[message.event_id] = message
        self._ordered(message.event_id)
        self._write_block(message, "end")

    def _ordered(self, event_id: str) -> None:
        if event_id not in self.position:
            self.position[event_id] = len(self.order)
            self.order.append(event_id)

    def _write_block(self, message: Message, index: str) -> None:
        t = self.text
        tag = "ev:" + message.event_id
        own = message.sender == self.app.user_id
        colour = colour_for(message.sender)
        name_tag = "name:" + colour
        if name_tag not in self._name_tags:
            self._name_tags.add(name_tag)
            t.tag_configure(name_tag, foreground=colour)
        t.mark_set("ins", index)
        t.mark_gravity("ins", "right")
        pieces: list[Any] = []  # text, tags, text, tags...: one Tk call for the run of text

        def put(text: str, *tags: str) -> None:
            pieces.extend((text, (tag, *tags)))

        def flush() -> None:
            if pieces:
                t.insert("ins", *pieces)
                pieces.clear()

        shown = self.app.display_name(message.sender)
        self._shown_names.setdefault(message.sender, shown)
        put(shown, "sender", name_tag, "from:" + message.sender)
        put("  " + clock_text(message.ts), "time")
        if own and not message.redacted:
            read = self.position.get(message.event_id, self.read_upto + 1) <= self.read_upto
            put("  ✓✓" if read else "  ✓", "status", "st:" + message.event_id, *(("read",) if read else ()))
        put("\n")
        if message.reply_to and not message.redacted:
            put(self._quote(message.reply_to), "reply", "quote:" + message.reply_to)
        if message.redacted:
            put("Message deleted\n", "deleted")
        elif message.kind == "image":
            image = self.images.get(message.event_id)
            if image is not None:
                flush()
                t.image_create("ins", image=image)
                t.tag_add(tag, "ins -1c", "ins")
            else:
                put(f"[image] {message.body} (loading preview…)", "imgph:" + message.event_id, "body")
            put("\n")
        elif message.kind == "file":
            card = self._file_card(message)
            flush()
            t.window_create("ins", window=card, padx=4, pady=2)
            t.tag_add(tag, "ins -1c", "ins")
            put("\n")
        else:
            for piece, url in split_links(message.body):
                put(piece, "body", *(("link", "href:" + url) if url else ()))
            if message.edited:
                put("  (edited)", "edited")
            put("\n", "body")
        self._write_relations(message, put)
        if own and message.unreachable and not message.redacted:
            put(unreachable_text(message.unreachable, self.app.display_name) + "\n", "unreachable")
        put("\n")
        flush()

    def _quote(self, event_id: str) -> str:
        quoted = self.messages.get(event_id)
        if quoted is None:
            return "↪ an earlier message\n"
        if quoted.redacted:  # a deleted message is gone from the quotes too
            return f"↪ {self.app.display_name(quoted.sender)}: a deleted message\n"
        body = " ".join(quoted.body.split())
        return f"↪ {self.app.display_name(quoted.sender)}: {body[:80]}\n"

    def _requote(self, event_id: str) -> None:
        """Write the quotes of ``event_id`` again (it was deleted)."""
        t = self.text
        ranges = t.tag_ranges("quote:" + event_id)
        if not ranges:
            return
        t.configure(state="normal")
        for start, end in reversed(list(zip(ranges[0::2], ranges[1::2], strict=True))):
            tags = t.tag_names(start)
            t.delete(start, end)
            t.insert(start, self._quote(event_id), tags)
        t.configure(state="disabled")

    def _file_card(self, message: Message) -> ttk.Frame:
        info = message.file or {}
        card = ttk.Frame(self.text, bootstyle="secondary", padding=8)
        name = str(info.get("name") or message.body)
        ttk.Label(card, text=name, font=("TkDefaultFont", 10, "bold"), bootstyle="@secondary").pack(anchor="w")
        ttk.Label(card, text=human_size(int(info.get("size") or 0)), bootstyle="@secondary").pack(anchor="w")
        bar = ttk.Progressbar(card, length=180, maximum=100, bootstyle="info-striped")
        button = ttk.Button(card, text="Download", bootstyle="info", command=lambda: self.download(message))
        button.pack(anchor="w", pady=(4, 0))
        self.cards[message.event_id] = {"frame": card, "bar": bar, "button": button, "path": None}
        return card

    def _replace_block(self, event_id: str, message: Message | None) -> None:
        ranges = self.text.tag_ranges("ev:" + event_id)
        if not ranges:
            if message is not None:
                self.text.configure(state="normal")
                self._append(message)
                self.text.configure(state="disabled")
            return
        start = self.text.index(ranges[0])
        self.text.configure(state="normal")
        self.text.delete(ranges[0], ranges[-1])
        if message is not None:
            self.messages[event_id] = message
            self._ordered(event_id)
            self._write_block(message, start)
        self.text.configure(state="disabled")

    # -------------------------------------------------------------- live
    def _received(self, event: MessageReceived) -> None:
        message = event.message
        if message.room_id != self.room_id or not self.loaded and self._queue:
            if message.room_id == self.room_id:
                self._queue.insert(0, message)
            return
        at_end = self._settle_scroll or self.text.yview()[1] > 0.98
        if message.event_id in self.failed:
            del self.failed[message.event_id]
            self._replace_block(message.event_id, message)
        elif message.event_id not in self.messages:
            self.text.configure(state="normal")
            self._append(message)
            self.text.configure(state="disabled")
        self._settle_later(scroll=at_end or event.own, mark=not event.own)

    def _settle_later(self, scroll: bool, mark: bool) -> None:
        """After the live messages of this tick: one scroll to the end, one read receipt."""
        self._settle_scroll |= scroll
        self._settle_mark |= mark
        if self._settle_job is None:
            self._settle_job = self.after(0, self._settle)

    def _settle(self) -> None:
        self._settle_job = None
        scroll, mark, self._settle_scroll, self._settle_mark = self._settle_scroll, self._settle_mark, False, False
        if scroll:
            self.text.see("end")
        if mark:
            self._mark_read()

    def _deleted(self, event: MessageDeleted) -> None:
        old = self.messages.get(event.event_id)
        if event.room_id == self.room_id and old is not None:
            self._replace_block(event.event_id, Message(old.event_id, old.room_id, old.sender, old.sender_device,
                                                        old.ts, old.kind, "", None, None, True))
            self._requote(event.event_id)

    def _failed(self, event: DecryptionFailed) -> None:
        if event.room_id == self.room_id and event.event_id and event.event_id not in self.messages:
            self._add_failed(event.event_id, event.sender, event.sender_device)

    def _add_failed(self, event_id: str, sender: str, device: str) -> None:
        if event_id in self.failed or event_id in self.messages:
            return
        self.failed[event_id] = (sender, device)
        t, tag = self.text, "ev:" + event_id
        t.configure(state="normal")
        t.insert("end", self.app.display_name(sender), (tag, "sender"))
        t.insert("end", "\nThis message could not be decrypted.  ", (tag, "failed"))
        button = ttk.Button(t, text="Reset session", bootstyle="warning-outline",
                            command=lambda: self.app.send(b.ResetSession(sender, device)))
        t.window_create("end", window=button)
        t.tag_add(tag, "end -2c", "end -1c")
        t.insert("end", "\n\n", (tag,))
        t.configure(state="disabled")

    def _receipt(self, event: ReceiptUpdated) -> None:
        if event.room_id != self.room_id or event.user_id == self.app.user_id:
            return
        if event.event_id not in self.position:
            if not self.loaded:  # the history is still being written
                self._late_receipts.append((event.user_id, event.event_id))
            return
        upto = self.position[event.event_id]
        if upto <= self.read_upto:
            return
        self.text.configure(state="normal")
        for event_id in self.order[self.read_upto + 1: upto + 1]:
            ranges = self.text.tag_ranges("st:" + event_id)
            if ranges:
                start = self.text.index(ranges[0])
                self.text.delete(ranges[0], ranges[1])
                self.text.insert(start, "  ✓✓", ("ev:" + event_id, "status", "read", "st:" + event_id))
        self.text.configure(state="disabled")
        self.read_upto = upto

    def is_read(self, event_id: str) -> bool:
        return self.position.get(event_id, self.read_upto + 1) <= self.read_upto

    def _rename_senders(self) -> None:
        """Rewrite sender names that changed (e.g. a new display name) in place."""
        t = self.text
        for user, old in list(self._shown_names.items()):
            new = self.app.display_name(user)
            if new == old:
                continue
            self._shown_names[user] = new
            ranges = t.tag_ranges("from:" + user)
            t.configure(state="normal")
            for start, end in reversed(list(zip(ranges[0::2], ranges[1::2], strict=True))):
                tags = t.tag_names(start)
                t.delete(start, end)
                t.insert(start, new, tags)
            t.configure(state="disabled")

    # ------------------------------------------------------------ media
    def _image(self, event: b.ImageReady) -> None:
        if event.event_id not in self.messages:
            return
        thumb = event.thumbnail
        photo = ImageTk.PhotoImage(Image.frombytes("RGBA", (thumb.width, thumb.height), thumb.rgba), master=self)
        self.images[event.event_id] = photo
        ranges = self.text.tag_ranges("imgph:" + event.event_id)
        if ranges:
            self.text.configure(state="normal")
            start = self.text.index(ranges[0])
            self.text.delete(ranges[0], ranges[1])
            self.text.image_create(start, image=photo)
            self.text.tag_add("ev:" + event.event_id, start, f"{start} +1c")
            self.text.configure(state="disabled")

    def download(self, message: Message) -> None:
        from tkinter import filedialog
        folder = filedialog.askdirectory(parent=self, title="Save the file in…", mustexist=True)
        if folder:
            self.start_download(message.event_id, folder)

    def start_download(self, event_id: str, folder: str) -> None:
        card = self.cards.get(event_id)
        if card is not None:
            card["button"].configure(state="disabled", text="Downloading…")
            card["bar"].pack(anchor="w", pady=(4, 0))
        self.app.send(b.DownloadFile(self.room_id, event_id, folder))

    def _progress(self, event: b.DownloadProgress) -> None:
        card = self.cards.get(event.event_id)
        if card is not None and event.total:
            card["bar"].configure(value=100 * event.done / event.total)

    def _downloaded(self, event: b.DownloadFinished) -> None:
        card = self.cards.get(event.event_id)
        if card is not None:
            card["bar"].configure(value=100)
            card["button"].configure(text="Saved ✓", state="disabled")
            card["path"] = event.path
            self.app.notify("Download finished", event.path)

    # ---------------------------------------------------------- actions
    def link_at(self, index: str) -> str | None:
        return next((str(t[5:]) for t in self.text.tag_names(index) if t.startswith("href:")), None)

    def _open_link(self, event: Any) -> None:
        url = self.link_at(f"@{event.x},{event.y}")
        if url is not None:
            import webbrowser
            webbrowser.open(url)

    def event_at(self, index: str) -> str | None:
        for tag in self.text.tag_names(index):
            if tag.startswith("ev:"):
                return str(tag[3:])
        return None

    def _context_menu(self, event: Any) -> None:
        event_id = self.event_at(f"@{event.x},{event.y}")
        if event_id is None:
            return
        menu = self.menu = ttk.Menu(self, tearoff=False)
        message = self.messages.get(event_id)
        if message is not None and not message.redacted:
            if self.on_reply is not None:
                menu.add_command(label="Reply", command=lambda: self.on_reply(message) if self.on_reply else None)
            menu.add_command(label="Copy text", command=lambda: self._copy(message.body))
            if message.kind in ("file", "image"):
                menu.add_command(label="Download…", command=lambda: self.download(message))
            self._edit_menu(menu, message)
            if message.sender == self.app.user_id:
                menu.add_command(label="Delete for everyone", command=lambda: self.confirm_delete(message))
            self._react_menu(menu, message)
        elif event_id in self.failed:
            sender, device = self.failed[event_id]
            menu.add_command(label="Reset secure session",
                             command=lambda: self.app.send(b.ResetSession(sender, device)))
        menu.tk_popup(event.x_root, event.y_root)

    def _copy(self, text: str) -> None:
        self.clipboard_clear()
        self.clipboard_append(text)

    def confirm_delete(self, message: Message) -> None:
        from ttkbootstrap.dialogs import Messagebox
        answer = Messagebox.yesno("Delete this message for everyone in the conversation? "
                                  "It cannot be restored.", "Delete message", parent=self)
        if answer in ("Yes", "yes", True):
            self.app.send(b.DeleteMessage(self.room_id, message.event_id))

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The right side: conversation header, message view, typing indicator and composer."""

from __future__ import annotations

import time
from tkinter import filedialog
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.core.events import Message, PresenceChanged, TypingChanged
from client_tk.views.messages import MessageView
from client_tk.views.outbox import OutboxPanel
from client_tk.views.shortcuts import install_shortcuts

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

TYPING_REPEAT_S = 10.0
TYPING_IDLE_MS = 5000
IMAGE_TYPES = [("Images", "*.png *.jpg *.jpeg *.gif *.webp *.bmp")]


class ConversationView(ttk.Frame):
    def __init__(self, master: Any, app: ParleyApp, room: b.RoomInfo) -> None:
        super().__init__(master)
        self.app = app
        self.room = room
        header = ttk.Frame(self, padding=(10, 8))
        header.pack(side="top", fill="x")
        # the buttons first, so that a long title is cut instead of squeezing them out
        ttk.Button(header, text="Info", bootstyle="secondary-outline", command=self.show_info).pack(side="right")
        self.find_button = ttk.Button(header, text="Find", bootstyle="secondary-outline",
                                      command=lambda: self.messages.open_search())
        self.find_button.pack(side="right", padx=6)
        self._avatar = app.avatar(self, room.title, 38, app.room_avatar_url(room))
        self._avatar_look: tuple[Any, ...] = (room.title, app.room_avatar_url(room), self._avatar.parley_picture)
        self.avatar = ttk.Label(header, image=self._avatar)
        self.avatar.pack(side="left")
        titles = ttk.Frame(header)
        titles.pack(side="left", padx=10, fill="x", expand=True)
        self.title = ttk.Label(titles, text=room.title, font=("TkDefaultFont", 13, "bold"))
        self.title.pack(anchor="w")
        self.subtitle = ttk.Label(titles, text="", bootstyle="secondary")
        self.subtitle.pack(anchor="w")
        ttk.Separator(self).pack(side="top", fill="x")
        # composer (bottom up)
        composer = ttk.Frame(self, padding=(10, 6, 10, 10))
        composer.pack(side="bottom", fill="x")
        self.reply_bar = ttk.Frame(self, padding=(12, 2))
        self.reply_label = ttk.Label(self.reply_bar, text="", bootstyle="info")
        self.reply_label.pack(side="left")
        ttk.Button(self.reply_bar, text="✕", bootstyle="link", command=self.cancel_reply).pack(side="right")
        self.typing = ttk.Label(self, text="", bootstyle="secondary", padding=(12, 0),
                                font=("TkDefaultFont", 9, "italic"))
        self.typing.pack(side="bottom", fill="x")
        self.outbox = OutboxPanel(self, app, room.room_id)
        self.outbox.pack(side="bottom", fill="x")
        attach = ttk.Menubutton(composer, text="Attach", bootstyle="secondary-outline")
        menu = ttk.Menu(attach, tearoff=False)
        menu.add_command(label="Image…", command=lambda: self.attach(image=True))
        menu.add_command(label="File…", command=lambda: self.attach(image=False))
        attach.configure(menu=menu)
        attach.pack(side="left", fill="y")
        ttk.Button(composer, text="Send", bootstyle="primary", command=self.send_message).pack(side="right", fill="y")
        self.entry = ttk.Text(composer, height=3, wrap="word", font=("TkDefaultFont", 11), undo=True)
        self.entry.pack(side="left", fill="x", expand=True, padx=8)
        self.entry.bind("<Return>", self._enter)
        self.entry.bind("<KeyPress>", self._key, add="+")
        self.entry.bind("<Escape>", lambda e: self.cancel_reply())
        self.entry.bind("<Up>", self._up)
        if app.screen is not None:
            install_shortcuts(self.entry, app.screen)  # before the Text class's own Ctrl+K, Ctrl+F...
        self.messages = MessageView(self, app, room.room_id, on_reply=self.reply, on_edit=self.edit)
        self.messages.pack(side="top", fill="both", expand=True)
        self.reply_to: Message | None = None
        self.editing: Message | None = None
        self._typing_sent = 0.0
        self._typing_job: str | None = None
        self._subs = [app.bus.subscribe(TypingChanged, self._typing),
                      app.bus.subscribe(PresenceChanged, lambda e: self._subtitle()),
                      app.bus.subscribe(b.RoomsSnapshot, self._rooms),
                      app.bus.subscribe(b.AvatarReady, self._avatar_ready)]
        self._subtitle()
        draft = app.drafts.get(room.room_id)
        if draft:
            self.entry.insert("1.0", draft)
        app.send(b.OpenRoom(room.room_id))

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        if self._typing_job is not None:
            self.after_cancel(self._typing_job)
            self._typing_job = None
        draft = self.entry.get("1.0", "end").strip()
        if draft:
            self.app.drafts[self.room.room_id] = draft
        else:
            self.app.drafts.pop(self.room.room_id, None)
        if self._typing_sent:
            self.app.send(b.SetTyping(self.room.room_id, False))
        super().destroy()

    def _rooms(self, event: b.RoomsSnapshot) -> None:
        room = next((r for r in event.rooms if r.room_id == self.room.room_id), None)
        if room is None:
            return
        if room != self.room:  # most snapshots are about other conversations
            before, self.room = self.room, room
            if room.title != before.title:
                self.title.configure(text=room.title)
            self._subtitle()
        if (room.title, self.app.room_avatar_url(room)) != self._avatar_look[:2]:  # a DM: their new picture
            self._show_avatar()

    def _avatar_ready(self, event: b.AvatarReady) -> None:
        if event.mxc == self.app.room_avatar_url(self.room):
            self._show_avatar()

    def _show_avatar(self) -> None:
        mxc = self.app.room_avatar_url(self.room)
        self._avatar = self.app.avatar(self, self.room.title, 38, mxc)
        self._avatar_look = (self.room.title, mxc, self._avatar.parley_picture)
        self.avatar.configure(image=self._avatar)

    def _subtitle(self) -> None:
        room = self.room
        if room.is_direct and room.peer:
            state = "online" if self.app.online(room.peer) else "offline"
            self.subtitle.configure(text=f"direct chat · {state}")
        else:
            online = sum(1 for u in room.members if self.app.online(u))
            count = len(room.members)
            self.subtitle.configure(text=f"{count} member{'' if count == 1 else 's'} · {online} online")

    # ------------------------------------------------------------ typing
    def _typing(self, event: TypingChanged) -> None:
        if event.room_id != self.room.room_id:
            return
        others = [self.app.display_name(u) for u in event.user_ids if u != self.app.user_id]
        if not others:
            self.typing.configure(text="")
        elif len(others) == 1:
            self.typing.configure(text=f"{others[0]} is typing…")
        else:
            self.typing.configure(text=f"{', '.join(others)} are typing…")

    def _key(self, event: Any) -> None:
        if event.keysym in ("Return", "Shift_L", "Shift_R", "Control_L", "Control_R", "Escape"):
            return
        now = time.monotonic()
        if now - self._typing_sent > TYPING_REPEAT_S:
            self._typing_sent = now
            self.app.send(b.SetTyping(self.room.room_id, True))
        if self._typing_job is not None:
            self.after_cancel(self._typing_job)
        self._typing_job = self.after(TYPING_IDLE_MS, self._stop_typing)

    def _stop_typing(self) -> None:
        self._typing_job = None
        if self._typing_sent:
            self._typing_sent = 0.0
            self.app.send(b.SetTyping(self.room.room_id, False))

    # ------------------------------------------------------------ sending
    def _enter(self, event: Any) -> str | None:
        if event.state & 0x1:  # Shift+Enter: new line
            return None
        self.send_message()
        return "break"

    def send_message(self) -> None:
        text = self.entry.get("1.0", "end").strip()
        if not text:
            return
        self.entry.delete("1.0", "end")
        self.app.drafts.pop(self.room.room_id, None)
        if self.editing is not None:
            if text != self.editing.body:
                self.app.send(b.EditMessage(self.room.room_id, self.editing.event_id, text))
        else:
            self.app.send(b.SendText(self.room.room_id, text, self.reply_to.event_id if self.reply_to else None))
        self.cancel_reply()
        if self._typing_job is not None:
            self.after_cancel(self._typing_job)
        self._stop_typing()

    def attach(self, image: bool) -> None:
        path = filedialog.askopenfilename(parent=self, title="Send an image" if image else "Send a file",
                                          filetypes=IMAGE_TYPES if image else [("All files", "*")])
        if path:
            self.send_path(path, image)

    def send_path(self, path: str, image: bool) -> None:
        self.app.send(b.SendFile(self.room.room_id, path, image, self.reply_to.event_id if self.reply_to else None))
        self.cancel_reply()

    def reply(self, message: Message) -> None:
        if self.editing is not None:
            self.cancel_reply()
        self.reply_to = message
        self.reply_label.configure(text=f"↪ Replying to {self.app.display_name(message.sender)}: {message.body[:60]}")
        self.reply_bar.pack(side="bottom", fill="x", before=self.typing)
        self.entry.focus_set()

    def edit(self, message: Message) -> None:
        """Edit one of our messages in the composer (Enter saves, Esc cancels)."""
        self.reply_to = None
        self.editing = message
        self.reply_label.configure(text="✎ Editing your message (Enter saves, Esc cancels)")
        self.reply_bar.pack(side="bottom", fill="x", before=self.typing)
        self.entry.delete("1.0", "end")
        self.entry.insert("1.0", message.body)
        self.entry.focus_set()

    def _up(self, event: Any) -> str | None:
        """Up in an empty composer: edit our last message."""
        if self.entry.get("1.0", "end").strip():
            return None
        last = self.messages.last_own_text()
        if last is None:
            return None
        self.edit(last)
        return "break"

    def cancel_reply(self) -> None:
        if self.editing is not None:
            self.editing = None
            self.entry.delete("1.0", "end")
        self.reply_to = None
        self.reply_bar.pack_forget()

    def show_info(self) -> None:
        from client_tk.views.dialogs import GroupInfoDialog, ProfileDialog
        if self.room.is_direct and self.room.peer:
            ProfileDialog(self.app, self.room.peer)
        else:
            GroupInfoDialog(self.app, self.room)

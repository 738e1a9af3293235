# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The left column: pending invitations (accept/decline) above the conversation list
(circular avatars, online dot for direct chats, unread badge, favourites first)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.core.events import PresenceChanged

if TYPE_CHECKING:
    from client_tk.app import ParleyApp


class RoomList(ttk.Frame):
    def __init__(self, master: Any, app: ParleyApp, on_select: Callable[[str], None]) -> None:
        super().__init__(master, padding=(6, 6))
        self.app = app
        self.on_select = on_select
        self.selected: str | None = None
        self.invites_box = ttk.Frame(self)
        self.heading = ttk.Label(self, text="CONVERSATIONS", bootstyle="secondary",
                                 font=("TkDefaultFont", 8, "bold"))
        self.heading.pack(anchor="w", pady=(6, 2))
        self.list_box = ttk.Frame(self)
        self.list_box.pack(fill="both", expand=True)
        self.rows: dict[str, dict[str, Any]] = {}
        self.invite_rows: dict[str, dict[str, Any]] = {}
        self._images: list[Any] = []
        self._shown: set[str] = set()  # mxc URIs the rows ask for
        self.menu: Any = None
        self._subs = [app.bus.subscribe(b.RoomsSnapshot, lambda e: self.render()),
                      app.bus.subscribe(PresenceChanged, self._presence),
                      app.bus.subscribe(b.AvatarReady, self._avatar_ready)]
        self.render()

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        super().destroy()

    def _presence(self, event: PresenceChanged) -> None:
        if any(r.peer == event.user_id for r in self.app.rooms.rooms):
            self.render()

    def _avatar_ready(self, event: b.AvatarReady) -> None:
        if event.mxc in self._shown:
            self.render()

    def order(self) -> list[b.RoomInfo]:
        return sorted(self.app.rooms.rooms, key=lambda r: (not r.favourite, r.title.casefold(), r.room_id))

    def render(self) -> None:
        for child in (*self.invites_box.winfo_children(), *self.list_box.winfo_children()):
            child.destroy()
        self._images.clear()
        self._shown.clear()
        self.rows.clear()
        self.invite_rows.clear()
        invitations = self.app.rooms.invitations
        if not invitations:
            self.invites_box.pack_forget()  # an emptied frame keeps its old height otherwise
        else:
            self.invites_box.pack(fill="x", before=self.heading)
            ttk.Label(self.invites_box, text="INVITATIONS", bootstyle="warning",
                      font=("TkDefaultFont", 8, "bold")).pack(anchor="w")
        for invite in invitations:
            self._invite_row(invite)
        for room in self.order():
            self._room_row(room)
        if not self.app.rooms.rooms:
            ttk.Label(self.list_box, text="No conversations yet.\nStart one with “+ Chat”.",
                      bootstyle="secondary", justify="left").pack(anchor="w", pady=8)

    def _invite_row(self, room: b.RoomInfo) -> None:
        frame = ttk.Frame(self.invites_box, bootstyle="warning", padding=1)
        frame.pack(fill="x", pady=2)
        inner = ttk.Frame(frame, padding=6)
        inner.pack(fill="x")
        title = room.title if room.title != room.room_id or not room.inviter else self.app.display_name(room.inviter)
        what = "direct chat" if room.is_direct else "group"
        ttk.Label(inner, text=title, font=("TkDefaultFont", 10, "bold")).pack(anchor="w")
        ttk.Label(inner, text=f"{what} · from {self.app.display_name(room.inviter)}",
                  bootstyle="secondary").pack(anchor="w")
        buttons = ttk.Frame(inner)
        buttons.pack(fill="x", pady=(4, 0))
        accept = ttk.Button(buttons, text="Accept", bootstyle="success", width=8,
                            command=lambda: self.app.send(b.AcceptInvite(room.room_id)))
        accept.pack(side="left")
        decline = ttk.Button(buttons, text="Decline", bootstyle="danger-outline", width=8,
                             command=lambda: self.app.send(b.DeclineInvite(room.room_id)))
        decline.pack(side="left", padx=6)
        self.invite_rows[room.room_id] = {"frame": frame, "accept": accept, "decline": decline, "title": title}

    def _room_row(self, room: b.RoomInfo) -> None:
        selected = room.room_id == self.selected
        style = "primary" if selected else "default"
        frame = ttk.Frame(self.list_box, padding=(6, 5), bootstyle=style)
        frame.pack(fill="x", pady=1)
        online = self.app.online(room.peer) if room.is_direct and room.peer else None
        mxc = self.app.room_avatar_url(room)
        if mxc:
            self._shown.add(mxc)
        image = self.app.avatar(self, room.title, 36, mxc, online)
        self._images.append(image)
        inverse = "@primary" if selected else "default"
        avatar = ttk.Label(frame, image=image, bootstyle=inverse)
        avatar.pack(side="left")
        text = ("★ " if room.favourite else "") + room.title
        name = ttk.Label(frame, text=text, font=("TkDefaultFont", 10, "bold" if room.unread else "normal"),
                         bootstyle=inverse)
        name.pack(side="left", padx=8)
        badge = None
        if room.unread and not selected:
            badge = ttk.Label(frame, text=f" {room.unread if room.unread < 100 else '99+'} ",
                              bootstyle="@danger", font=("TkDefaultFont", 9, "bold"))
            badge.pack(side="right")
        for widget in (frame, avatar, name):
            widget.bind("<Button-1>", self._clicked(room))
            widget.bind("<Button-3>", self._right_clicked(room))
        self.rows[room.room_id] = {"frame": frame, "name": name, "badge": badge, "online": online,
                                   "favourite": room.favourite, "avatar": avatar,
                                   "picture": bool(image.parley_picture)}

    def _clicked(self, room: b.RoomInfo) -> Callable[[Any], None]:
        return lambda event: self.select(room.room_id)

    def _right_clicked(self, room: b.RoomInfo) -> Callable[[Any], None]:
        return lambda event: self._menu(event, room)

    def _menu(self, event: Any, room: b.RoomInfo) -> None:
        menu = self.menu = ttk.Menu(self, tearoff=False)
        label = "Remove from favourites" if room.favourite else "Add to favourites"
        menu.add_command(label=label, command=lambda: self.app.send(b.SetFavourite(room.room_id, not room.favourite)))
        menu.tk_popup(event.x_root, event.y_root)

    def select(self, room_id: str) -> None:
        self.selected = room_id
        self.render()
        self.on_select(room_id)

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The left column: pending invitations (accept/decline) above the conversation list.

The list is *virtualised*: however many conversations there are, only the rows
that fit the visible height exist as widgets (a small pool, placed at fixed
heights); scrolling (scrollbar, mouse wheel, keyboard) rebinds the pool to
other conversations.  Each engine snapshot re-sorts the conversations
(favourites first, then by last activity) and reconfigures only the visible
rows whose look changed, so 1,000 conversations cost what 12 do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.core.events import PresenceChanged

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

ROW_H = 54
WHEEL_ROWS = 3
NAME_CHARS = 24
PREVIEW_CHARS = 34


def short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def when_text(ts_ms: int, now: float | None = None) -> str:
    """'14:05' today, 'Mon' this week, else '03.11.'."""
    if not ts_ms:
        return ""
    now = time.time() if now is None else now
    stamp = time.localtime(ts_ms / 1000)
    if time.strftime("%Y%m%d", stamp) == time.strftime("%Y%m%d", time.localtime(now)):
        return time.strftime("%H:%M", stamp)
    if now - ts_ms / 1000 < 6 * 86400:
        return time.strftime("%a", stamp)
    return time.strftime("%d.%m.", stamp)


def sort_key(room: b.RoomInfo) -> tuple[bool, int, str, str]:
    return (not room.favourite, -room.last_ts, room.title.casefold(), room.room_id)


class _Row:
    """One pooled row widget; :meth:`show` binds it to a conversation."""

    def __init__(self, owner: RoomList) -> None:
        self.owner = owner
        self.frame = ttk.Frame(owner.viewport, padding=(6, 4))
        self.frame.columnconfigure(1, weight=1)
        self.avatar = ttk.Label(self.frame)
        self.avatar.grid(row=0, column=0, rowspan=2, padx=(0, 8))
        self.name = ttk.Label(self.frame, anchor="w")
        self.name.grid(row=0, column=1, sticky="ew")
        self.when = ttk.Label(self.frame, font=("TkDefaultFont", 8))
        self.when.grid(row=0, column=2, sticky="e")
        self.preview = ttk.Label(self.frame, anchor="w", font=("TkDefaultFont", 9))
        self.preview.grid(row=1, column=1, sticky="ew")
        self.badge = ttk.Label(self.frame, bootstyle="@danger", font=("TkDefaultFont", 9, "bold"))
        self.room: b.RoomInfo | None = None
        self.look: tuple[Any, ...] | None = None
        self.image: Any = None
        self.picture = False
        self.styled_selected: bool | None = None
        self.online: bool | None = None
        for widget in (self.frame, self.avatar, self.name, self.when, self.preview, self.badge):
            widget.bind("<Button-1>", self._click)
            widget.bind("<Button-3>", self._menu)
            widget.bindtags((owner.wheel_tag, *widget.bindtags()))

    def _click(self, event: Any) -> None:
        if self.room is not None:
            self.owner.select(self.room.room_id)

    def _menu(self, event: Any) -> None:
        if self.room is not None:
            self.owner.context_menu(event, self.room)

    def show(self, room: b.RoomInfo, y: int, selected: bool) -> None:
        app = self.owner.app
        online = app.online(room.peer) if room.is_direct and room.peer else None
        mxc = app.room_avatar_url(room)
        picture = app.avatars.picture(mxc) is not None if mxc else False
        look = (room, selected, online, mxc, picture, app.display_name(room.last_sender) if room.last_sender else "")
        self.frame.place(x=0, y=y, relwidth=1.0, height=ROW_H)
        if look == self.look:
            return
        self.look, self.room, self.online = look, room, online
        if mxc:
            self.owner.shown.add(mxc)
        self.image = app.avatar(self.frame, room.title, 36, mxc, online)
        self.picture = bool(self.image.parley_picture)
        self.avatar.configure(image=self.image)
        if selected != self.styled_selected:  # ttkbootstrap's style lookups are the slow part: only on change
            self.styled_selected = selected
            inverse = "@primary" if selected else "default"
            muted = "@primary" if selected else "secondary"
            self.frame.configure(bootstyle="primary" if selected else "default")
            self.avatar.configure(bootstyle=inverse)
            self.name.configure(bootstyle=inverse)
            self.when.configure(bootstyle=muted)
            self.preview.configure(bootstyle=muted)
        self.name.configure(text=("★ " if room.favourite else "") + short(room.title, NAME_CHARS),
                            font=("TkDefaultFont", 10, "bold" if room.unread else "normal"))
        self.when.configure(text=when_text(room.last_ts))
        self.preview.configure(text=("muted · " if room.muted else "") + self.owner.preview_text(room))
        if room.unread and not selected:
            self.badge.configure(text=f" {room.unread if room.unread < 100 else '99+'} ")
            self.badge.grid(row=1, column=2, sticky="e")
        else:
            self.badge.grid_remove()

    def hide(self) -> None:
        self.room = None
        self.look = None
        self.frame.place_forget()


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
        body = ttk.Frame(self)
        body.pack(fill="both", expand=True)
        self.scrollbar = ttk.Scrollbar(body, orient="vertical", command=self.yview, bootstyle="round")
        self.scrollbar.pack(side="right", fill="y")
        self.viewport = ttk.Frame(body)
        self.viewport.pack(side="left", fill="both", expand=True)
        self.empty = ttk.Label(self.viewport, text="No conversations yet.\nStart one with “+ Chat”.",
                               bootstyle="secondary", justify="left")
        self.wheel_tag = f"parley-roomlist-{id(self)}"
        self.viewport.bindtags((self.wheel_tag, *self.viewport.bindtags()))
        for sequence, step in (("<Button-4>", -WHEEL_ROWS), ("<Button-5>", WHEEL_ROWS)):
            self.bind_class(self.wheel_tag, sequence, self._wheel(step))
        self.bind_class(self.wheel_tag, "<MouseWheel>",
                        lambda e: self.scroll_rows(-WHEEL_ROWS if e.delta > 0 else WHEEL_ROWS))
        self.viewport.bind("<Configure>", lambda e: self.layout())
        self.ordered: list[b.RoomInfo] = []
        self.index: dict[str, b.RoomInfo] = {}
        self.top = 0  # pixels scrolled off the top
        self.pool: list[_Row] = []
        self.rows: dict[str, dict[str, Any]] = {}  # visible conversations -> their row's widgets
        self.invite_rows: dict[str, dict[str, Any]] = {}
        self._invites: tuple[b.RoomInfo, ...] = ()
        self.shown: set[str] = set()  # mxc URIs the visible rows asked for
        self.menu: Any = None
        self.renders = 0
        self._subs = [app.bus.subscribe(b.RoomsSnapshot, lambda e: self.render()),
                      app.bus.subscribe(PresenceChanged, self._presence),
                      app.bus.subscribe(b.AvatarReady, self._avatar_ready)]
        self.render()

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        super().destroy()

    def _presence(self, event: PresenceChanged) -> None:
        if any(r.room is not None and r.room.peer == event.user_id for r in self.pool):
            self.layout()

    def _avatar_ready(self, event: b.AvatarReady) -> None:
        if event.mxc in self.shown:
            self.layout()

    # ------------------------------------------------------------ model
    def order(self) -> list[b.RoomInfo]:
        return sorted(self.app.rooms.rooms, key=sort_key)

    def order_ids(self) -> list[str]:
        return [r.room_id for r in self.ordered]

    def __contains__(self, room_id: str) -> bool:
        return room_id in self.index

    def preview_text(self, room: b.RoomInfo) -> str:
        if not room.preview:
            return "direct chat" if room.is_direct else f"group · {len(room.members)} members"
        who = "You" if room.last_sender == self.app.user_id else \
            self.app.display_name(room.last_sender) if room.last_sender and not room.is_direct else ""
        return short(f"{who}: {room.preview}" if who else room.preview, PREVIEW_CHARS)

    def render(self) -> None:
        """A new snapshot: re-sort, then refresh what is visible."""
        self.renders += 1
        everything = self.order()
        self.ordered = [r for r in everything if not r.stranger]  # requests wait above the list
        self.index = {r.room_id: r for r in self.ordered}
        pending = self.app.rooms.invitations + tuple(r for r in everything if r.stranger)
        if self._invites != pending:
            self._invites = pending
            self._render_invites()
        self.layout()

    def _render_invites(self) -> None:
        for child in self.invites_box.winfo_children():
            child.destroy()
        self.invite_rows.clear()
        if not self._invites:
            self.invites_box.pack_forget()  # an emptied frame keeps its old height otherwise
            return
        self.invites_box.pack(fill="x", before=self.heading)
        requests = [i for i in self._invites if i.stranger]
        known = [i for i in self._invites if not i.stranger]
        for heading, invites in (("MESSAGE REQUESTS", requests), ("INVITATIONS", known)):
            if invites:
                ttk.Label(self.invites_box, text=heading, bootstyle="warning",
                          font=("TkDefaultFont", 8, "bold")).pack(anchor="w")
            for invite in invites:
                self._invite_row(invite)

    # ----------------------------------------------------------- layout
    def visible_count(self) -> int:
        height = max(self.viewport.winfo_height(), ROW_H)
        return height // ROW_H + 2

    def layout(self) -> None:
        """Bind the pool to the conversations in view (creates rows only up to the visible count)."""
        height = max(self.viewport.winfo_height(), 1)
        total = len(self.ordered) * ROW_H
        self.top = max(0, min(self.top, total - height))
        first = self.top // ROW_H
        wanted = min(self.visible_count(), len(self.ordered) - first)
        while len(self.pool) < wanted:
            self.pool.append(_Row(self))
        self.rows = {}
        self.shown = set()
        for i, row in enumerate(self.pool):
            position = first + i
            if i >= wanted or position >= len(self.ordered):
                if row.room is not None:
                    row.hide()
                continue
            room = self.ordered[position]
            row.show(room, position * ROW_H - self.top, room.room_id == self.selected)
            if row.look is not None and row.look[3]:
                self.shown.add(row.look[3])
            self.rows[room.room_id] = {"frame": row.frame, "name": row.name, "badge": row.badge
                                       if room.unread and room.room_id != self.selected else None,
                                       "online": row.online, "favourite": room.favourite,
                                       "avatar": row.avatar, "picture": row.picture, "preview": row.preview,
                                       "when": row.when}
        if self.ordered:
            self.empty.place_forget()
        else:
            self.empty.place(x=0, y=8)
        if total <= height:
            self.scrollbar.set(0.0, 1.0)
        else:
            self.scrollbar.set(self.top / total, (self.top + height) / total)

    def yview(self, *args: Any) -> None:
        """The scrollbar's command: ``moveto fraction`` or ``scroll n units|pages``."""
        total = len(self.ordered) * ROW_H
        height = max(self.viewport.winfo_height(), 1)
        if not args:
            return
        if args[0] == "moveto":
            self.top = int(float(args[1]) * total)
        elif args[0] == "scroll":
            amount = int(args[1])
            self.top += amount * (ROW_H if args[2] == "units" else max(ROW_H, height - ROW_H))
        self.layout()

    def _wheel(self, rows: int) -> Callable[[Any], None]:
        return lambda event: self.scroll_rows(rows)

    def scroll_rows(self, rows: int) -> None:
        self.top += rows * ROW_H
        self.layout()

    def ensure_visible(self, room_id: str) -> None:
        ids = self.order_ids()
        if room_id not in self.index:
            return
        y = ids.index(room_id) * ROW_H
        height = max(self.viewport.winfo_height(), ROW_H)
        if y < self.top:
            self.top = y
        elif y + ROW_H > self.top + height:
            self.top = y + ROW_H - height
        self.layout()

    # ------------------------------------------------------ invitations
    def _invite_row(self, room: b.RoomInfo) -> None:
        frame = ttk.Frame(self.invites_box, bootstyle="warning", padding=1)
        frame.pack(fill="x", pady=2)
        inner = ttk.Frame(frame, padding=6)
        inner.pack(fill="x")
        title = room.title if room.title != room.room_id or not room.inviter else self.app.display_name(room.inviter)
        if room.stranger and room.peer:
            title = self.app.display_name(room.peer)
        what = "direct chat" if room.is_direct else "group"
        ttk.Label(inner, text=title, font=("TkDefaultFont", 10, "bold")).pack(anchor="w")
        sender = room.inviter or room.peer
        who = f"{self.app.display_name(sender)} ({sender})" if room.stranger else self.app.display_name(sender)
        ttk.Label(inner, text=f"{what} · from {who}", bootstyle="secondary").pack(anchor="w")
        if room.stranger:
            ttk.Label(inner, text="You have no conversation with this person yet.",
                      bootstyle="secondary", font=("TkDefaultFont", 8)).pack(anchor="w")
        buttons = ttk.Frame(inner)
        buttons.pack(fill="x", pady=(4, 0))
        joined = self.app.user_id in room.members
        accept = ttk.Button(buttons, text="Accept", bootstyle="success", width=8,
                            command=lambda: self.app.send(b.AcceptRequest(room.room_id) if room.stranger
                                                          else b.AcceptInvite(room.room_id)))
        accept.pack(side="left")
        decline = ttk.Button(buttons, text="Decline", bootstyle="danger-outline", width=8,
                             command=lambda: self.app.send(b.LeaveRoom(room.room_id) if joined
                                                           else b.DeclineInvite(room.room_id)))
        decline.pack(side="left", padx=6)
        block = None
        if room.inviter or room.stranger and room.peer:
            blocked = room.inviter or room.peer or ""
            block = ttk.Button(buttons, text="Block", bootstyle="secondary-outline", width=6,
                               command=lambda: self.app.send(b.BlockUser(blocked, room.room_id)))
            block.pack(side="left")
        self.invite_rows[room.room_id] = {"frame": frame, "accept": accept, "decline": decline, "block": block,
                                          "title": title, "request": room.stranger}

    # ---------------------------------------------------------- actions
    def context_menu(self, event: Any, room: b.RoomInfo) -> None:
        menu = self.menu = ttk.Menu(self, tearoff=False)
        label = "Remove from favourites" if room.favourite else "Add to favourites"
        menu.add_command(label=label, command=lambda: self.app.send(b.SetFavourite(room.room_id, not room.favourite)))
        menu.add_command(label="Unmute" if room.muted else "Mute",
                         command=lambda: self.app.send(b.SetMuted(room.room_id, not room.muted)))
        menu.add_separator()
        menu.add_command(label="Leave conversation…", command=lambda: self.confirm_leave(room))
        if room.is_direct and room.peer:
            peer = room.peer
            menu.add_command(label=f"Block {self.app.display_name(peer)}…",
                             command=lambda: self.confirm_block(room, peer))
        menu.tk_popup(event.x_root, event.y_root)

    def confirm_leave(self, room: b.RoomInfo) -> None:
        from ttkbootstrap.dialogs import Messagebox
        if Messagebox.yesno(f"Leave “{room.title}”? You will not get its messages any more.", "Leave",
                            parent=self) in ("Yes", "yes", True):
            self.app.send(b.LeaveRoom(room.room_id))

    def confirm_block(self, room: b.RoomInfo, user_id: str) -> None:
        from ttkbootstrap.dialogs import Messagebox
        if Messagebox.yesno(f"Block {self.app.display_name(user_id)}? You leave this chat and get no messages "
                            "or invitations from them.", "Block", parent=self) in ("Yes", "yes", True):
            self.app.send(b.BlockUser(user_id, room.room_id))

    def select(self, room_id: str) -> None:
        self.selected = room_id
        self.ensure_visible(room_id)
        self.on_select(room_id)

    def step(self, direction: int, unread_only: bool = False) -> None:
        """Select the next (1) or previous (-1) conversation, or the next unread one."""
        ids = self.order_ids()
        if not ids:
            return
        at = ids.index(self.selected) if self.selected in self.index else (-1 if direction > 0 else len(ids))
        for offset in range(1, len(ids) + 1):
            candidate = ids[(at + direction * offset) % len(ids)]
            if not unread_only or (self.index[candidate].unread and candidate != self.selected):
                self.select(candidate)
                return

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The chat screen: top bar (me, connection indicator, actions), conversation list, conversation."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.core.events import ConnectionState, ConnectionStateChanged, MessageReceived
from client_tk.views.conversation import ConversationView
from client_tk.views.rooms import RoomList
from client_tk.views.shortcuts import install_shortcuts

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

CONNECTION_STYLE = {ConnectionState.CONNECTED: ("success", "Connected"),
                    ConnectionState.RECONNECTING: ("warning", "Reconnecting…"),
                    ConnectionState.OFFLINE: ("danger", "Offline")}


class MainView(ttk.Frame):
    def __init__(self, master: Any, app: ParleyApp) -> None:
        super().__init__(master)
        self.app = app
        top = ttk.Frame(self, padding=(10, 6), bootstyle="dark")
        top.pack(side="top", fill="x")
        # the buttons first: on a narrow window the labels on the left are cut, not the buttons
        account = ttk.Menubutton(top, text="Account", bootstyle="secondary-outline")
        menu = ttk.Menu(account, tearoff=False)
        menu.add_command(label="My profile…", command=self.profile)
        menu.add_command(label="Devices…", command=self.devices)
        menu.add_command(label="Settings…", command=self.settings)
        menu.add_command(label="Search all conversations…", accelerator="Ctrl+Shift+F", command=self.search_all)
        menu.add_command(label="Keyboard shortcuts…", accelerator="F1", command=self.help)
        menu.add_separator()
        menu.add_command(label="Log out…", command=self.logout)
        account.configure(menu=menu)
        account.pack(side="right", padx=3)
        ttk.Button(top, text="+ Group", command=self.new_group, bootstyle="info-outline").pack(side="right", padx=3)
        ttk.Button(top, text="+ Chat", command=self.new_chat, bootstyle="info").pack(side="right", padx=3)
        self._me = self._my_avatar()
        self._me_look: tuple[Any, ...] | None = None
        self._title = ""
        self.me = ttk.Label(top, image=self._me, text="  " + app.display_name(app.user_id), compound="left",
                            bootstyle="@dark", font=("TkDefaultFont", 11, "bold"), cursor="hand2")
        self.me.pack(side="left")
        self.me.bind("<Button-1>", lambda e: self.profile())
        self.connection_dot = ttk.Label(top, text="●", bootstyle="@dark", font=("TkDefaultFont", 12))
        self.connection_dot.pack(side="left", padx=(16, 2))
        self.connection_label = ttk.Label(top, text="Connecting…", bootstyle="@dark")
        self.connection_label.pack(side="left")
        panes = ttk.Panedwindow(self, orient="horizontal")
        panes.pack(fill="both", expand=True)
        left = ttk.Frame(panes, width=250)
        left.pack_propagate(False)  # keep the column's width; long names are cut, not the buttons
        self.room_list = RoomList(left, app, self.open_room)
        self.room_list.pack(fill="both", expand=True)
        self.right = ttk.Frame(panes)
        panes.add(left, weight=0)
        panes.add(self.right, weight=1)
        self.placeholder = ttk.Label(self.right, text="Select a conversation", bootstyle="secondary",
                                     font=("TkDefaultFont", 14))
        self.placeholder.place(relx=0.5, rely=0.5, anchor="center")
        self.conversation: ConversationView | None = None
        self._subs = [app.bus.subscribe(ConnectionStateChanged, self._connection),
                      app.bus.subscribe(b.RoomOpened, lambda e: self._opened(e.room_id)),
                      app.bus.subscribe(b.RoomsSnapshot, self._rooms),
                      app.bus.subscribe(MessageReceived, self._notify),
                      app.bus.subscribe(b.AvatarReady, self._avatar_ready)]
        self._want: str | None = None
        self.started_ms = int(time.time() * 1000)  # what is older is history (a new device's), not news
        self.unread_total = 0
        install_shortcuts(app.window, self)
        self._map_binding = app.window.bind("<Map>", self._shown_again, add="+")
        if app.connection is not None:
            self._connection(app.connection)

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        try:
            self.app.window.unbind("<Map>", self._map_binding)
        except Exception:  # the window is going away as well
            pass
        super().destroy()

    def _shown_again(self, event: Any) -> None:
        if event.widget is self.app.window and self.conversation is not None:
            self.conversation.messages.shown_again()

    # ------------------------------------------------------------- state
    def _connection(self, event: ConnectionStateChanged) -> None:
        style, text = CONNECTION_STYLE[event.state]
        if event.state is ConnectionState.RECONNECTING and event.retry_in:
            text = f"Reconnecting (retry in {event.retry_in:.0f} s)…"
        self.connection_dot.configure(foreground={"success": "#00bc8c", "warning": "#f39c12",
                                      "danger": "#e74c3c"}[style])
        self.connection_label.configure(text=text)
        self.connection_state = event.state

    def _my_avatar(self) -> Any:
        me = self.app.user_id
        return self.app.avatar(self, self.app.display_name(me), 30, self.app.user_avatars.get(me or ""))

    def _show_me(self) -> None:
        me = self.app.user_id
        if not me:
            return
        mxc = self.app.user_avatars.get(me)
        look = (self.app.display_name(me), mxc, self.app.avatars.picture(mxc) is not None if mxc else False)
        if look != self._me_look:  # a snapshot rarely changes us: no new picture per snapshot
            self._me_look = look
            self._me = self._my_avatar()
            self.me.configure(image=self._me, text="  " + look[0])

    def _avatar_ready(self, event: b.AvatarReady) -> None:
        if event.mxc == self.app.user_avatars.get(self.app.user_id or ""):
            self._show_me()

    def _rooms(self, event: b.RoomsSnapshot) -> None:
        self._show_me()
        self.unread_total = sum(r.unread for r in event.rooms)
        who = self.app.user_id or ""
        title = f"({self.unread_total}) Parley — {who}" if self.unread_total else f"Parley — {who}"
        if title != self._title:
            self._title = title
            self.app.window.title(title)
        if self._want and self._want in self.app.room_index:
            want, self._want = self._want, None
            self.room_list.select(want)
        current = self.conversation.room.room_id if self.conversation else None
        if self.conversation is not None and current not in self.app.room_index:
            self.conversation.destroy()
            self.conversation = None
            self.placeholder.place(relx=0.5, rely=0.5, anchor="center")

    def _opened(self, room_id: str) -> None:
        if room_id in self.app.room_index:
            self.room_list.select(room_id)
        else:
            self._want = room_id

    def _notify(self, event: MessageReceived) -> None:
        message = event.message
        if event.own or message.redacted or message.ts < self.started_ms:
            return  # history (a newly paired device's backlog) is not news
        current = self.conversation.room.room_id if self.conversation else None
        if message.room_id == current and self.app.visible() and self.app.focused():
            return
        body = {"image": "[image]", "file": "[file] " + message.body}.get(message.kind, message.body)
        room = self.app.room_index.get(message.room_id)
        if room is not None and (room.muted or room.stranger):
            return  # muted; or a message request (shown above the list, not pushed at the user)
        title = self.app.display_name(message.sender)
        if room is not None and not room.is_direct:
            title = f"{title} in {room.title}"
        self.app.alert(title, body)

    # ----------------------------------------------------------- actions
    def open_room(self, room_id: str) -> None:
        room = self.app.room_index.get(room_id)
        if room is None:
            return
        if self.conversation is not None:
            if self.conversation.room.room_id == room_id:
                return
            self.conversation.destroy()
        self.placeholder.place_forget()
        self.conversation = ConversationView(self.right, self.app, room)
        self.conversation.pack(fill="both", expand=True)

    def find(self) -> None:
        if self.conversation is not None:
            self.conversation.messages.open_search()
        else:
            self.search_all()

    def search_all(self) -> None:
        from client_tk.views.search import SearchDialog
        SearchDialog(self.app, self.open_and_find)

    def open_and_find(self, room_id: str, event_id: str) -> None:
        self.room_list.select(room_id)
        if self.conversation is not None and self.conversation.room.room_id == room_id:
            self.conversation.messages.show_event(event_id)

    def switcher(self) -> None:
        from client_tk.views.search import QuickSwitcher
        QuickSwitcher(self.app, self.room_list.select)

    def help(self) -> None:
        from client_tk.views.search import HelpDialog
        HelpDialog(self.app)

    def step(self, direction: int, unread_only: bool = False) -> None:
        self.room_list.step(direction, unread_only)

    def new_chat(self) -> None:
        from client_tk.views.dialogs import NewChatDialog
        NewChatDialog(self.app)

    def new_group(self) -> None:
        from client_tk.views.dialogs import NewGroupDialog
        NewGroupDialog(self.app)

    def profile(self) -> None:
        from client_tk.views.dialogs import ProfileDialog
        ProfileDialog(self.app, self.app.user_id or "")

    def settings(self) -> None:
        from client_tk.views.settings import SettingsDialog
        SettingsDialog(self.app)

    def devices(self) -> None:
        from client_tk.views.dialogs import DevicesDialog
        DevicesDialog(self.app)

    def logout(self) -> None:
        from ttkbootstrap.dialogs import Messagebox
        answer = Messagebox.yesno("Log out and end this device's session? You can log in again "
                                  "with your password on this computer.", "Log out", parent=self)
        if answer in ("Yes", "yes", True):
            self.app.send(b.Logout())

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The main window: owns the bridge, the app-level event bus, and switches screens.

:class:`AppBus` fans events out by type (a subscriber of a base class gets
every subclass) on the Tk thread.  :class:`ParleyApp` drains the bridge's
queue every :data:`~client_tk.bridge.TICK_MS` ms in batches of at most
:data:`~client_tk.bridge.BATCH`, shows the login screen until
:class:`~client_tk.bridge.LoggedIn`, then the chat screen, and pops small
in-app notifications.
"""

from __future__ import annotations

import time
import tkinter as tk
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.core.events import ClientEvent, ConnectionStateChanged, PresenceChanged
from client_tk.widgets.avatar import AvatarCache
from client_tk.widgets.desktop import DesktopNotifications, set_urgent
from client_tk.widgets.tk_threads import finalize_on_tk_thread
from client_tk.worker import Worker

E = TypeVar("E", bound=ClientEvent)
HISTORY = 500  # toasts and alerts remembered (for tests and a future notification list)
DEFAULT_THEME = "catppuccin-dark"  # the earlier client used Catppuccin Mocha


class AppBus:
    def __init__(self) -> None:
        self._subs: dict[type, list[Callable[[Any], None]]] = {}

    def subscribe(self, kind: type[E], callback: Callable[[E], None]) -> Callable[[], None]:
        self._subs.setdefault(kind, []).append(callback)

        def unsubscribe() -> None:
            if callback in self._subs.get(kind, []):
                self._subs[kind].remove(callback)
        return unsubscribe

    def publish(self, event: ClientEvent) -> None:
        for kind in type(event).__mro__:
            for callback in list(self._subs.get(kind, ())):
                callback(event)


class ParleyApp:
    """One client: a window (the Tk root, or a Toplevel of ``master``) and its worker."""

    def __init__(self, master: tk.Misc | None = None, *, data_dir: Path | None = None,
                 server: str = "http://127.0.0.1:8008", title: str = "Parley",
                 **core_options: Any) -> None:
        # Tk variables and images collected on the worker thread are released here.
        self.finalizers = finalize_on_tk_thread()
        if master is None:
            self.window: Any = ttk.Window(title=title, themename=DEFAULT_THEME, size=(1000, 680),
                                                  minsize=(720, 480))
        else:
            self.window = ttk.Toplevel(title=title, master=master, size=(1000, 680))
        self.window.protocol("WM_DELETE_WINDOW", self.close)
        self.bus = AppBus()
        from client_tk.views.security import SecurityPrompts
        self.security = SecurityPrompts(self)  # pairing code and safety-number prompts
        self.bridge = b.Bridge()
        self.data_dir = data_dir or default_data_dir()
        self.worker = Worker(self.bridge, self.data_dir, **core_options)
        from client_tk.views.settings import Preferences
        self.prefs = Preferences.load(self.data_dir)
        self.apply_theme()
        self.bridge.start()
        self.desktop = DesktopNotifications(self.bridge.loop)
        self.window.bind("<FocusIn>", self._focused, add="+")
        self.server = server
        self.user_id: str | None = None
        self.device_id: str | None = None
        self.names: dict[str, str] = {}
        self.user_avatars: dict[str, str] = {}  # user id -> mxc:// URI of the profile picture
        self.avatars = AvatarCache(lambda mxc: self.send(b.FetchAvatar(mxc)))
        self.presence: dict[str, str] = {}
        self.alerts: deque[tuple[str, str]] = deque(maxlen=HISTORY)  # the latest alerts (title, text)
        self.urgent = False  # the window's urgency hint is set (cleared when it gets the focus)
        self.drafts: dict[str, str] = {}  # room id -> text typed but not sent (kept across chats)
        self.rooms: b.RoomsSnapshot = b.RoomsSnapshot((), ())
        self.room_index: dict[str, b.RoomInfo] = {}  # the joined conversations of ``rooms`` by id
        self.connection: ConnectionStateChanged | None = None
        self.ticks = 0
        self.max_gap = 0.0
        self._last_tick = time.monotonic()
        self._closed = False
        self.screen: Any = None
        self.bus.subscribe(b.LoggedIn, self._on_logged_in)
        self.bus.subscribe(b.LoggedOut, lambda e: self._show_auth())
        self.bus.subscribe(b.RoomsSnapshot, self._on_rooms)
        self.bus.subscribe(b.AvatarReady, self._on_avatar)
        self.bus.subscribe(b.AvatarFailed, lambda e: self.avatars.fail(e.mxc))
        self.bus.subscribe(PresenceChanged, lambda e: self.presence.__setitem__(e.user_id, e.presence))
        self.bus.subscribe(ConnectionStateChanged, lambda e: setattr(self, "connection", e))
        self.bus.subscribe(b.Notice, lambda e: self.notify("Parley", e.text))
        self.bus.subscribe(b.CommandFailed, self._on_failed)
        self.toast = Toast(self.window)
        self._show_auth()
        self.window.after(b.TICK_MS, self._pump)

    # ------------------------------------------------------------ plumbing
    def send(self, command: b.Command) -> None:
        self.bridge.send(command)

    def _pump(self) -> None:
        if self._closed:
            return
        now = time.monotonic()
        self.max_gap = max(self.max_gap, now - self._last_tick)
        self._last_tick = now
        self.ticks += 1
        self.finalizers.drain()
        self.bridge.drain(self.bus.publish)
        self.window.after(b.TICK_MS, self._pump)

    def display_name(self, user_id: str | None) -> str:
        if not user_id:
            return "?"
        return self.names.get(user_id) or user_id.split(":")[0].lstrip("@")

    def room_avatar_url(self, room: b.RoomInfo) -> str | None:
        """The group's picture, or for a direct chat the other person's."""
        if room.avatar_url:
            return room.avatar_url
        return self.user_avatars.get(room.peer) if room.is_direct and room.peer else None

    def avatar(self, master: Any, name: str, size: int, mxc: str | None = None,
               online: bool | None = None) -> Any:
        """A round avatar PhotoImage (Tk thread; keep a reference): picture or letter."""
        return self.avatars.photo(master, name, size, mxc, online)

    def _on_avatar(self, event: b.AvatarReady) -> None:
        from PIL import Image
        thumb = event.thumbnail
        self.avatars.put(event.mxc, Image.frombytes("RGBA", (thumb.width, thumb.height), thumb.rgba))

    def apply_theme(self) -> None:
        from client_tk.views.settings import THEMES
        theme = THEMES.get(self.prefs.theme, DEFAULT_THEME)
        style = getattr(self.window, "style", None)
        if style is not None and style.theme_use() != theme:
            style.theme_use(theme)

    def save_prefs(self) -> None:
        self.prefs.save(self.data_dir)

    def online(self, user_id: str) -> bool:
        return self.presence.get(user_id) == "online"

    def notify(self, title: str, text: str) -> None:
        self.toast.show(title, text)

    def visible(self) -> bool:
        """The window is on screen (not minimised or withdrawn): what is shown there counts as read."""
        try:
            return self.window.state() in ("normal", "zoomed") and bool(self.window.winfo_viewable())
        except tk.TclError:
            return False

    def focused(self) -> bool:
        """The keyboard focus is in this window."""
        try:
            widget = self.window.focus_get()
        except (tk.TclError, KeyError):
            return False
        return widget is not None and widget.winfo_toplevel() is self.window

    def alert(self, title: str, text: str) -> None:
        """A new message elsewhere: the in-window toast, and the desktop's notification."""
        self.alerts.append((title, text))
        self.notify(title, text)
        if self.prefs.desktop_notifications:
            self.desktop.show(title, text)
        if not self.urgent and not self.focused():  # set once: each call opens an X connection
            self.urgent = set_urgent(self.window, True)

    def _focused(self, event: Any) -> None:
        if self.urgent and event.widget is self.window:
            self.urgent = False
            set_urgent(self.window, False)

    # ------------------------------------------------------------- screens
    def _swap(self, screen: Any) -> None:
        if self.screen is not None:
            self.screen.destroy()
        self.screen = screen
        screen.pack(fill="both", expand=True)
        self.toast.lift()

    def _show_auth(self) -> None:
        from client_tk.views.auth import AuthView
        self.user_id = None
        self._swap(AuthView(self.window, self))

    def _on_logged_in(self, event: b.LoggedIn) -> None:
        from client_tk.views.main import MainView
        self.user_id, self.device_id = event.user_id, event.device_id
        self.window.title(f"Parley — {event.user_id}")
        self._swap(MainView(self.window, self))

    def _on_rooms(self, event: b.RoomsSnapshot) -> None:
        self.rooms = event
        self.room_index = {r.room_id: r for r in event.rooms}
        self.names.update(dict(event.names))
        self.user_avatars = dict(event.avatars)

    def _on_failed(self, event: b.CommandFailed) -> None:
        from client_tk.views.errors import human
        text = human(event)
        if text is not None and event.command not in ("Login", "Register", "PairThisDevice"):
            self.notify("Could not do that", text)  # the auth screen shows its own

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self.screen is not None:  # views say goodbye (typing stopped) while the worker still runs
            try:
                self.screen.destroy()
            except tk.TclError:
                pass
            self.screen = None
        self.bridge.stop(self.worker.shutdown())
        try:
            self.window.destroy()
        except tk.TclError:
            pass


class Toast:
    """Desktop-style notification inside the window (bottom right, hides itself)."""

    def __init__(self, window: Any) -> None:
        self.frame = ttk.Frame(window, bootstyle="secondary", padding=10)
        self.title = ttk.Label(self.frame, font=("TkDefaultFont", 10, "bold"), bootstyle="@secondary")
        self.title.pack(anchor="w")
        self.text = ttk.Label(self.frame, wraplength=300, bootstyle="@secondary", justify="left")
        self.text.pack(anchor="w")
        self.history: deque[tuple[str, str]] = deque(maxlen=HISTORY)
        self._job: str | None = None  # hides the toast when its time is up
        self._draw_job: str | None = None
        self._next: tuple[str, str, int] = ("", "", 0)
        self._until = 0.0
        self._placed = False

    def show(self, title: str, text: str, ms: int = 4000) -> None:
        """Shown on the next tick: of a burst (many messages elsewhere) only the last is drawn."""
        self.history.append((title, text))
        self._next = (title, text, ms)
        if self._draw_job is None:
            self._draw_job = self.frame.after(0, self._draw)

    def _draw(self) -> None:
        self._draw_job = None
        title, text, ms = self._next
        self.title.configure(text=title)
        self.text.configure(text=text if len(text) <= 200 else text[:199] + "…")
        if not self._placed:
            self._placed = True
            self.frame.place(relx=1.0, rely=1.0, x=-16, y=-70, anchor="se")
            self.frame.lift()
        self._until = time.monotonic() + ms / 1000
        if self._job is None:
            self._job = self.frame.after(ms, self._expire)

    def _expire(self) -> None:
        self._job = None
        left = self._until - time.monotonic()
        if left > 0:  # shown again meanwhile: stays its full time from then
            self._job = self.frame.after(int(left * 1000) + 1, self._expire)
        else:
            self.hide()

    def lift(self) -> None:
        self.frame.lift()

    def hide(self) -> None:
        self._job = None
        self._placed = False
        self.frame.place_forget()


def default_data_dir() -> Path:
    import os
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "parley"

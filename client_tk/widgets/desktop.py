"""The desktop's side of an alert: a notification (``desktop-notifier``: D-Bus on Linux, the
native centres on macOS and Windows) and the window's urgency hint (X11 ``WM_HINTS``).

Both are best effort: without a notification service or an X server the in-window toast
and the unread count in the title remain.  Notifications are sent from the worker's asyncio
loop (the library is asynchronous); the urgency hint is set from the Tk thread.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from concurrent.futures import Future
from typing import Any

logger = logging.getLogger(__name__)
URGENCY_HINT = 1 << 8  # XUrgencyHint in WM_HINTS.flags (ICCCM 4.1.2.4)


class DesktopNotifications:
    """Sends notifications on ``loop`` (another thread's); gives up quietly after a failure."""

    def __init__(self, loop: asyncio.AbstractEventLoop, app_name: str = "Parley") -> None:
        self.loop = loop
        self.notifier: Any = None
        self.sent = 0
        self.failed: str | None = None
        if sys.platform.startswith("linux") and not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
            self.failed = "no D-Bus session"
            return
        try:
            from desktop_notifier import DesktopNotifier
        except ImportError as exc:  # the 'client' extra is not installed
            self.failed = str(exc)
            return
        self.notifier = DesktopNotifier(app_name=app_name)

    @property
    def available(self) -> bool:
        return self.notifier is not None and self.failed is None

    def show(self, title: str, text: str) -> Future[Any] | None:
        if not self.available or self.loop.is_closed():
            return None
        future = asyncio.run_coroutine_threadsafe(self.notifier.send(title=title, message=text[:300]), self.loop)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        error = future.exception() if not future.cancelled() else None
        if error is not None:
            logger.info("desktop notifications unavailable: %s", error)
            self.failed = str(error) or type(error).__name__
        else:
            self.sent += 1


def set_urgent(window: Any, urgent: bool) -> bool:
    """Set or clear the urgency hint of a Tk toplevel (X11 only); True if it was set."""
    if window.tk.call("tk", "windowingsystem") != "x11":
        return False
    try:
        from Xlib import display
    except ImportError:
        return False
    try:
        shown = display.Display(window.winfo_screen())
        try:
            inner = shown.create_resource_object("window", window.winfo_id())
            wrapper = inner.query_tree().parent  # Tk's wrapper: the client window the WM reads
            hints = wrapper.get_wm_hints()
            flags = int(hints.flags) if hints is not None else 0
            flags = flags | URGENCY_HINT if urgent else flags & ~URGENCY_HINT
            fields = {k: getattr(hints, k) for k in ("input", "initial_state", "icon_pixmap", "icon_window",
                                                     "icon_x", "icon_y", "icon_mask", "window_group")
                      if hints is not None and hasattr(hints, k)}
            wrapper.set_wm_hints(flags=flags, **fields)
            shown.sync()
        finally:
            shown.close()
    except Exception as exc:  # Xlib's errors, a display that went away: the hint is cosmetic
        logger.info("no urgency hint: %s", exc)
        return False
    return True


def is_urgent(window: Any) -> bool:
    """Whether the toplevel's WM_HINTS carry the urgency flag (X11)."""
    from Xlib import display
    shown = display.Display(window.winfo_screen())
    try:
        wrapper = shown.create_resource_object("window", window.winfo_id()).query_tree().parent
        hints = wrapper.get_wm_hints()
        return hints is not None and bool(int(hints.flags) & URGENCY_HINT)
    finally:
        shown.close()

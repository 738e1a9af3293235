# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The settings dialog (Account → Settings…): desktop notifications off and on (over a real
D-Bus notification server), the theme (applied at once, kept for the next start), the key backup
opt-in against the real server (recovery key shown once; off deletes the backup), and the
devices / profile / log-out entries."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from client_tk.views.settings import SettingsDialog
from tests.gui.conftest import DIRECT_HTTP_TIMEOUT, Mailbox, pump, screenshot
from tests.gui.test_desktop_alerts import desktop  # noqa: F401 (fixture)
from tests.gui.test_two_clients import register
from tests.support.notifications import NotificationDesktop

pytestmark = pytest.mark.gui


def backup_status(server: str, app: Any) -> int:
    client = app.worker.client
    headers = {"Authorization": f"Bearer {client.http.access_token}"}
    return httpx.get(f"{server}/_matrix/client/v3/room_keys/version", headers=headers,
                     timeout=DIRECT_HTTP_TIMEOUT).status_code


def test_settings_dialog(desktop: NotificationDesktop, gui_server: str,  # noqa: F811
                         make_app: Any, tk_root: Any, mailbox: Mailbox, xdisplay: str) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    register(alice, tk_root, mailbox, "alice")
    alice.screen.settings()
    dialog = next(w for w in alice.window.winfo_children() if isinstance(w, SettingsDialog))
    dialog.geometry("+650+0")  # beside the window (no window manager here): both in the screenshot
    pump(tk_root, lambda: str(dialog.backup_toggle.cget("state")) == "normal", what="backup state read")
    assert not dialog.backup.get()  # off unless the user turns it on

    # notifications: off means no desktop notification (the in-window toast stays)
    dialog.desktop.set(False)
    dialog._notifications()
    alice.alert("Bob", "while muted")
    dialog.desktop.set(True)
    dialog._notifications()
    alice.alert("Bob", "while on")
    pump(tk_root, lambda: any(s.body == "while on" for s in desktop.shown), what="a desktop notification")
    assert not any(s.body == "while muted" for s in desktop.shown)
    assert ("Bob", "while muted") in alice.alerts

    # theme: applied at once and kept
    dialog.theme.set("Light")
    dialog._theme()
    assert alice.window.style.theme_use() == "catppuccin-light"
    saved = json.loads((alice.data_dir / "settings.json").read_text())
    assert saved == {"desktop_notifications": True, "theme": "Light"}

    # key backup: on shows the recovery key once; the server has a backup; off deletes it
    assert backup_status(gui_server, alice) == 404
    dialog.backup.set(True)
    dialog._backup()
    pump(tk_root, lambda: dialog.recovery.winfo_manager() == "pack", what="recovery key shown")
    key = dialog.recovery.get()
    assert len(key.replace(" ", "")) >= 40 and str(dialog.recovery.cget("state")) == "readonly"
    assert backup_status(gui_server, alice) == 200
    screenshot(xdisplay, "settings_01_backup_on")
    dialog.backup.set(False)
    dialog._backup()
    pump(tk_root, lambda: not dialog.backup.get() and str(dialog.backup_toggle.cget("state")) == "normal"
         and dialog.recovery.winfo_manager() == "", what="backup off")
    assert backup_status(gui_server, alice) == 404

    # devices and profile open their dialogs
    labels = {}
    for frame in dialog.body.winfo_children():
        for child in frame.winfo_children():
            if child.winfo_class() == "TButton":
                labels[str(child.cget("text"))] = child
    assert {"Devices…", "Profile…", "Log out…"} <= set(labels)
    labels["Devices…"].invoke()
    pump(tk_root, lambda: any(type(w).__name__ == "DevicesDialog" for w in alice.window.winfo_children()),
         what="devices dialog")
    dialog.theme.set("Dark")
    dialog._theme()
    assert alice.window.style.theme_use() == "catppuccin-dark"

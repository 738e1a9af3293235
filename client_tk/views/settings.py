# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The settings dialog: notifications, theme, devices, key backup (opt-in) and the account.

Preferences of this computer (desktop notifications, theme) are kept in
``settings.json`` in the data folder (:class:`Preferences`); the key backup
is the account's (the worker turns it on or off and answers with
:class:`client_tk.bridge.BackupState`; turning it on shows the recovery key
once, to be written down).
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.views.dialogs import Dialog

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

logger = logging.getLogger(__name__)
THEMES = {"Dark": "catppuccin-dark", "Light": "catppuccin-light"}


@dataclass
class Preferences:
    desktop_notifications: bool = True
    theme: str = "Dark"

    @classmethod
    def load(cls, folder: Path) -> Preferences:
        try:
            raw = json.loads((folder / "settings.json").read_text())
        except (OSError, ValueError):
            return cls()
        prefs = cls()
        if isinstance(raw, dict):
            if isinstance(raw.get("desktop_notifications"), bool):
                prefs.desktop_notifications = raw["desktop_notifications"]
            if raw.get("theme") in THEMES:
                prefs.theme = raw["theme"]
        return prefs

    def save(self, folder: Path) -> None:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            (folder / "settings.json").write_text(json.dumps(asdict(self)))
        except OSError as exc:  # a preference not kept is not worth an error dialog
            logger.warning("settings not saved: %s", exc)


class SettingsDialog(Dialog):
    def __init__(self, app: ParleyApp) -> None:
        super().__init__(app, "Settings")
        prefs = app.prefs
        body = self.body
        ttk.Label(body, text="Notifications", font=("TkDefaultFont", 11, "bold")).pack(anchor="w")
        self.desktop = ttk.BooleanVar(master=self, value=prefs.desktop_notifications)
        ttk.Checkbutton(body, text="Desktop notifications for new messages", variable=self.desktop,
                        command=self._notifications, bootstyle="round-toggle").pack(anchor="w", pady=(4, 12))
        ttk.Label(body, text="Theme", font=("TkDefaultFont", 11, "bold")).pack(anchor="w")
        self.theme = ttk.StringVar(master=self, value=prefs.theme)
        row = ttk.Frame(body)
        row.pack(anchor="w", pady=(4, 12))
        for name in THEMES:
            ttk.Radiobutton(row, text=name, value=name, variable=self.theme,
                            command=self._theme).pack(side="left", padx=(0, 12))
        ttk.Label(body, text="Key backup", font=("TkDefaultFont", 11, "bold")).pack(anchor="w")
        self.backup = ttk.BooleanVar(master=self, value=False)
        self.backup_toggle = ttk.Checkbutton(
            body, text="Keep an encrypted copy of my message keys on the server", variable=self.backup,
            command=self._backup, bootstyle="round-toggle", state="disabled")
        self.backup_toggle.pack(anchor="w", pady=(4, 0))
        self.backup_note = ttk.Label(body, text="Off: only your devices can read your history.",
                                     bootstyle="secondary", wraplength=380)
        self.backup_note.pack(anchor="w", pady=(2, 0))
        self.recovery = ttk.Entry(body, width=64)  # read-only, selectable: to be written down
        ttk.Label(body, text="Devices and account", font=("TkDefaultFont", 11, "bold")).pack(anchor="w",
                                                                                         pady=(12, 0))
        buttons = ttk.Frame(body)
        buttons.pack(anchor="w", pady=(4, 0))
        from client_tk.views.dialogs import DevicesDialog, ProfileDialog
        ttk.Button(buttons, text="Devices…", bootstyle="secondary-outline",
                   command=lambda: DevicesDialog(app)).pack(side="left", padx=(0, 6))
        ttk.Button(buttons, text="Profile…", bootstyle="secondary-outline",
                   command=lambda: ProfileDialog(app, app.user_id or "")).pack(side="left", padx=(0, 6))
        ttk.Button(buttons, text="Log out…", bootstyle="danger-outline",
                   command=self._logout).pack(side="left")
        self.status.pack(anchor="w", pady=(8, 0))
        self._subs.append(app.bus.subscribe(b.BackupState, self._backup_state))
        app.send(b.GetBackup())

    def _notifications(self) -> None:
        self.app.prefs.desktop_notifications = bool(self.desktop.get())
        self.app.save_prefs()

    def _theme(self) -> None:
        self.app.prefs.theme = str(self.theme.get())
        self.app.apply_theme()
        self.app.save_prefs()

    def _backup(self) -> None:
        self.backup_toggle.configure(state="disabled")
        self.app.send(b.SetBackup(bool(self.backup.get())))

    def _backup_state(self, event: b.BackupState) -> None:
        self.backup.set(event.enabled)
        self.backup_toggle.configure(state="normal")
        if event.recovery_key:
            self.backup_note.configure(text="On. Write this recovery key down and keep it safe: it is the only "
                                            "way to your history without another device.")
            self.recovery.configure(state="normal")
            self.recovery.delete(0, "end")
            self.recovery.insert(0, event.recovery_key)
            self.recovery.configure(state="readonly")
            self.recovery.pack(anchor="w", pady=(4, 0), before=self.backup_note)
        else:
            self.recovery.pack_forget()
            self.backup_note.configure(text="On: new message keys are backed up, encrypted." if event.enabled
                                       else "Off: only your devices can read your history.")

    def _logout(self) -> None:
        screen: Any = self.app.screen
        self.destroy()
        if screen is not None and hasattr(screen, "logout"):
            screen.logout()

"""A desktop for the tests: a private D-Bus session bus (``dbus-daemon``) with a notification
server on it (the ``org.freedesktop.Notifications`` interface a desktop provides, as specified by
the Desktop Notifications Specification), recording what it is asked to show.

The D-Bus signatures are dbus-fast's annotations (strings such as ``"s"``), hence no
``from __future__ import annotations`` here."""
# ruff: noqa: F821, F722, N802, A002, UP037

import asyncio
import shutil
import subprocess
import threading
from dataclasses import dataclass, field
from typing import Any

from dbus_fast import Variant
from dbus_fast.aio import MessageBus
from dbus_fast.service import ServiceInterface, method, signal


@dataclass
class Shown:
    app_name: str
    summary: str
    body: str
    hints: dict[str, Any]


class _Notifications(ServiceInterface):
    def __init__(self, shown: list[Shown]) -> None:
        super().__init__("org.freedesktop.Notifications")
        self.shown = shown

    @method()
    def Notify(self, app_name: "s", replaces_id: "u", app_icon: "s", summary: "s",
               body: "s", actions: "as", hints: "a{sv}", expire_timeout: "i") -> "u":
        self.shown.append(Shown(app_name, summary, body,
                                {k: v.value if isinstance(v, Variant) else v for k, v in hints.items()}))
        return len(self.shown)

    @method()
    def CloseNotification(self, id: "u") -> None:
        return None

    @method()
    def GetCapabilities(self) -> "as":
        return ["body", "actions"]

    @method()
    def GetServerInformation(self) -> "ssss":
        return ["parley-tests", "parley", "1.0", "1.2"]

    @signal()
    def NotificationClosed(self, id: "u", reason: "u") -> "uu":
        return [id, reason]

    @signal()
    def ActionInvoked(self, id: "u", action_key: "s") -> "us":
        return [id, action_key]


@dataclass
class NotificationDesktop:
    address: str = ""
    shown: list[Shown] = field(default_factory=list)
    _daemon: subprocess.Popen[str] | None = None
    _loop: asyncio.AbstractEventLoop | None = None
    _thread: threading.Thread | None = None
    _bus: Any = None

    def start(self) -> None:
        daemon = shutil.which("dbus-daemon")
        if daemon is None:
            raise RuntimeError("dbus-daemon is not installed (apt-get install dbus)")
        self._daemon = subprocess.Popen([daemon, "--session", "--nofork", "--print-address"],
                                        stdout=subprocess.PIPE, text=True)
        assert self._daemon.stdout is not None
        self.address = self._daemon.stdout.readline().strip()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="notification-server", daemon=True)
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._serve(), self._loop).result(30)

    async def _serve(self) -> None:
        self._bus = await MessageBus(bus_address=self.address).connect()
        self._bus.export("/org/freedesktop/Notifications", _Notifications(self.shown))
        await self._bus.request_name("org.freedesktop.Notifications")

    def stop(self) -> None:
        if self._loop is not None:
            if self._bus is not None:
                self._loop.call_soon_threadsafe(self._bus.disconnect)
            self._loop.call_soon_threadsafe(self._loop.stop)
            if self._thread is not None:
                self._thread.join(10)
        if self._daemon is not None:
            self._daemon.terminate()
            self._daemon.wait(10)

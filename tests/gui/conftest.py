# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""GUI fixtures: a virtual X screen, a homeserver on a background loop, Parley windows.

* ``xdisplay`` (session): use ``$DISPLAY`` or start ``Xvfb`` on a free display
  (``-displayfd``); without Xvfb the GUI tests skip, except in CI (``CI=true``)
  where they fail.
* ``gui_server``: the real homeserver (``serve_homeserver``) on its own
  asyncio loop in a thread, so the test thread is free to run Tk.
* ``make_app``: :class:`ParleyApp` windows (Toplevels of one session root);
  at teardown every test saves a screenshot under ``artifacts/gui/<test>.png``.
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from common.crypto import KdfParams
from tests.support.server import serve_homeserver
from tests.support.smtp import SmtpSink

pytestmark = pytest.mark.gui
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "gui"
FAST_KDF = KdfParams.pbkdf2(iterations=1000)
PASSWORD = "correct horse battery"
# Requests a test makes itself, outside the client (httpx's default is 5 s: too short for a
# state event on a loaded CI machine; this is a ceiling for a hung server, not a timed assertion).
DIRECT_HTTP_TIMEOUT = 60.0


def _tk_missing() -> str | None:
    """Why the GUI cannot be built here (None when tkinter and ttkbootstrap import)."""
    try:
        import tkinter  # noqa: F401

        import ttkbootstrap  # noqa: F401
    except ImportError as exc:
        return (f"Tk is not available ({exc}): install python3-tk (Debian) or a Python built "
                "with Tk, and the 'client' extra, to run the GUI tests")
    return None


class _TkMissingModule(pytest.Module):
    """A GUI test module that is reported as skipped, with the reason, instead of failing to import."""

    reason = ""

    def collect(self) -> Any:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise pytest.fail.Exception(self.reason, pytrace=False)
        raise pytest.skip.Exception(self.reason, allow_module_level=True)


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module | None:
    reason = _tk_missing()
    if reason is None:
        return None
    module = _TkMissingModule.from_parent(parent, path=module_path)
    module.reason = reason
    return module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/gui" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.gui)


@pytest.fixture(scope="session")
def xdisplay() -> Iterator[str]:
    if os.environ.get("DISPLAY"):
        yield os.environ["DISPLAY"]
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail("Xvfb is not installed (CI needs it for the GUI tests: apt-get install xvfb)")
        pytest.skip("no DISPLAY and no Xvfb: install xvfb to run the GUI tests")
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen([xvfb, "-displayfd", str(write_fd), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
                            pass_fds=(write_fd,), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        number = pipe.readline().strip()
    if not number:
        proc.kill()
        pytest.fail("Xvfb did not report a display number")
    display = f":{number}"
    os.environ["DISPLAY"] = display
    try:
        yield display
    finally:
        os.environ.pop("DISPLAY", None)
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def tk_root(xdisplay: str) -> Iterator[Any]:
    import ttkbootstrap as ttk

    from client_tk.app import DEFAULT_THEME
    root = ttk.Window(themename=DEFAULT_THEME)
    root.withdraw()
    yield root
    root.destroy()


class Mailbox:
    """A real SMTP sink read synchronously (the test thread runs Tk)."""

    def __init__(self) -> None:
        self.sink = SmtpSink()

    def code_for(self, address: str, within_s: float = 20.0, pump: Callable[[], None] | None = None) -> str:
        deadline = time.monotonic() + within_s
        while time.monotonic() < deadline:
            for message in reversed(self.sink.messages_to(address)):
                body = message.get_payload(decode=True)
                if isinstance(body, bytes) and (match := re.search(rb"\b(\d{6})\b", body)):
                    return match.group(1).decode()
            if pump is not None:
                pump()
            time.sleep(0.02)
        raise AssertionError(f"no code mailed to {address}")


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox()
    box.sink.start()
    yield box
    box.sink.stop()


@pytest.fixture
def gui_server(make_config: Any, mailbox: Mailbox) -> Iterator[str]:
    config = make_config(smtp=mailbox.sink.smtp_config(),
                         rate_limits={"email_lookup_per_minute": 1000, "register_per_minute": 1000,
                                      "login_per_minute": 1000, "messages_per_minute": 100000})
    loop = asyncio.new_event_loop()
    ready: dict[str, Any] = {}
    started = threading.Event()
    stop: asyncio.Event | None = None

    async def run() -> None:
        nonlocal stop
        stop = asyncio.Event()
        try:
            async with serve_homeserver(config) as running:
                ready["url"] = running.base_url
                started.set()
                await stop.wait()
        except BaseException as exc:
            ready["error"] = exc
            started.set()
            raise

    thread = threading.Thread(target=lambda: loop.run_until_complete(run()), name="gui-homeserver", daemon=True)
    thread.start()
    # serve_homeserver bounds its own start-up (and then raises, which sets ``started``);
    # a shorter bound here failed loaded runs while the server was still migrating.
    while not started.wait(1.0):
        assert thread.is_alive(), "the homeserver thread ended without starting"
    if "error" in ready:
        raise ready["error"]
    yield str(ready["url"])
    assert stop is not None
    loop.call_soon_threadsafe(stop.set)
    thread.join(30)
    loop.close()


def pump(root: Any, until: Callable[[], Any], timeout: float = 90.0, what: str = "condition") -> Any:
    """Run the Tk loop until ``until()`` is truthy (waiting on real work, not a timed assertion)."""
    deadline = time.monotonic() + timeout
    while True:
        root.update()
        value = until()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.01)


def screenshot(display: str, name: str) -> Path:
    from PIL import ImageGrab
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)}.png"
    ImageGrab.grab(xdisplay=display).save(path)
    return path


@pytest.fixture
def make_app(tk_root: Any, xdisplay: str, tmp_path: Path, request: pytest.FixtureRequest
             ) -> Iterator[Callable[..., Any]]:
    from client_tk.app import ParleyApp
    made: list[Any] = []

    def make(server: str = "http://127.0.0.1:1", x: int = 0, name: str | None = None) -> Any:
        folder = tmp_path / (name or f"dev-{secrets.token_hex(3)}")
        app = ParleyApp(tk_root, data_dir=folder, server=server, kdf=FAST_KDF, allow_weak_kdf=True,
                        sync_timeout_ms=5_000)
        app.window.geometry(f"640x780+{x}+0")
        made.append(app)
        pump(tk_root, lambda: app.window.winfo_ismapped(), what="window shown")
        return app

    yield make
    try:
        for _ in range(5):
            tk_root.update()
            time.sleep(0.02)
        path = screenshot(xdisplay, request.node.name)
        print(f"\nscreenshot: {path}")
    finally:
        for app in made:
            app.close()
        tk_root.update()

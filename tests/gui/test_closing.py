# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Closing the window while a draft is being typed (the typing notice still pending) ends
the process cleanly; a draft survives switching to another conversation and back."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from client_tk import bridge as b
from tests.gui.conftest import pump
from tests.gui.test_room_list import logged_in, room, snapshot

pytestmark = pytest.mark.gui
ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import sys
    from pathlib import Path
    from client_tk import bridge as b
    from client_tk.app import ParleyApp

    app = ParleyApp(data_dir=Path(sys.argv[1]), server="http://127.0.0.1:1")
    app.bus.publish(b.LoggedIn("@me:example.test", "DEVICE"))
    info = b.RoomInfo("!a:example.test", "Ann", True, ("@me:example.test", "@ann:example.test"), (),
                      "@me:example.test", 0, False, peer="@ann:example.test")
    app.bus.publish(b.RoomsSnapshot((info,), ()))
    app.screen.room_list.select(info.room_id)
    chat = app.screen.conversation
    app.window.wait_visibility()
    chat.entry.focus_force()
    app.window.update()
    chat.entry.insert("1.0", "half a senten")
    chat.entry.event_generate("<KeyPress>", keysym="c")  # the typing notice is on, its 5 s timer runs
    assert chat._typing_job is not None
    app.window.after_idle(app.close)  # the user closes the window with the draft typed
    app.window.mainloop()
    print("closed cleanly", flush=True)
""")


def test_closing_with_a_fresh_draft_exits(xdisplay: str, tmp_path: Path) -> None:
    env = {**os.environ, "DISPLAY": xdisplay, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "data")], env=env, cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"the client did not exit after closing; stderr: {exc.stderr!r}") from None
    assert "Traceback" not in done.stderr, done.stderr
    assert done.returncode == 0, done.stderr
    assert "closed cleanly" in done.stdout


def test_a_draft_stays_with_its_conversation(make_app: Any, tk_root: Any) -> None:
    app = logged_in(make_app, tk_root)
    rooms = [room(1), room(2)]
    snapshot(app, tk_root, rooms)
    app.screen.room_list.select(rooms[0].room_id)
    pump(tk_root, lambda: app.screen.conversation is not None, what="first chat")
    app.screen.conversation.entry.insert("1.0", "not finished yet")
    app.screen.room_list.select(rooms[1].room_id)
    pump(tk_root, lambda: app.screen.conversation.room.room_id == rooms[1].room_id, what="second chat")
    assert app.screen.conversation.entry.get("1.0", "end").strip() == ""
    app.screen.room_list.select(rooms[0].room_id)
    pump(tk_root, lambda: app.screen.conversation.room.room_id == rooms[0].room_id, what="first chat again")
    assert app.screen.conversation.entry.get("1.0", "end").strip() == "not finished yet"
    app.bridge.post(b.Notice("still answering"))
    pump(tk_root, lambda: ("Parley", "still answering") in app.toast.history, what="the app still runs")

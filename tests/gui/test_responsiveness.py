# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""5,000 messages go through the bridge queue into a message view while an ``after`` ticker
measures the longest gap between ticks: reported, with only a generous sanity bound."""

from __future__ import annotations

import time
from typing import Any

import pytest

from client_tk import bridge as b
from client_tk.core.events import Message
from client_tk.views.messages import MessageView
from tests.gui.conftest import pump

pytestmark = pytest.mark.gui
COUNT = 5000


def test_5000_messages_keep_the_loop_answering(make_app: Any, tk_root: Any) -> None:
    app = make_app()
    app.user_id = "@me:example.test"
    room = "!history:example.test"
    view = MessageView(app.window, app, room)
    app.screen.pack_forget()
    view.pack(fill="both", expand=True)
    start = 1_700_000_000_000
    people = ["@me:example.test", "@ann:example.test", "@ben:example.test"]
    messages = tuple(
        Message(f"$ev{i}", room, people[i % 3], "DEV", start + i * 1000, "text",
                f"message number {i} " + "lorem ipsum dolor sit amet " * (i % 4),
                reply_to=f"$ev{i - 3}" if i % 50 == 0 and i else None)
        for i in range(COUNT))
    ticks: list[float] = []

    def tick() -> None:
        ticks.append(time.monotonic())
        if not view.loaded or len(ticks) < 3:
            tk_root.after(10, tick)

    pump(tk_root, lambda: True)
    began = time.monotonic()
    app.bridge.post(b.HistoryLoaded(room, messages))
    tk_root.after(10, tick)
    pump(tk_root, lambda: view.loaded, timeout=300, what="history inserted")
    total = time.monotonic() - began
    gaps = [later - earlier for earlier, later in zip(ticks, ticks[1:], strict=False)]
    longest = max(gaps)
    print(f"\n{COUNT} messages inserted in {total:.2f} s; {len(ticks)} ticks; "
          f"longest gap between after() ticks {longest * 1000:.0f} ms; "
          f"app pump's longest gap {app.max_gap * 1000:.0f} ms")
    assert len(view.messages) == COUNT
    assert view.text.get("end -4l", "end").strip().startswith("ann  ")  # the last sender (4999 % 3 == 1)
    assert "message number 4999 lorem" in view.text.get("end -4l", "end")
    assert longest < 5.0, "the Tk loop stopped answering"
    assert len(ticks) > 3  # the ticker ran while the batches were inserted

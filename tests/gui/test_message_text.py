# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""What a message shows: web links are clickable (http and https only), and an emoji is drawn
with a glyph (the platform's emoji font) instead of the empty box of a missing one."""

from __future__ import annotations

from typing import Any

import pytest
from PIL import ImageChops, ImageGrab

from client_tk import bridge as b
from client_tk.core.events import Message
from client_tk.views.messages import MessageView, split_links
from tests.gui.conftest import pump

pytestmark = pytest.mark.gui
ROOM = "!text:example.test"


def test_links_are_clickable(make_app: Any, tk_root: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    monkeypatch.setattr("webbrowser.open", lambda url, *a, **k: opened.append(url) or True)
    app = make_app()
    app.user_id = "@me:example.test"
    view = MessageView(app.window, app, ROOM)
    app.screen.pack_forget()
    view.pack(fill="both", expand=True)
    body = "see https://example.org/a?b=1&c=2, or javascript:alert(1) and file:///etc/passwd."
    app.bridge.post(b.HistoryLoaded(ROOM, (Message("$1", ROOM, "@ann:example.test", "D", 1_700_000_000_000,
                                                   "text", body),)))
    pump(tk_root, lambda: view.loaded, what="message shown")
    ranges = view.text.tag_ranges("link")
    assert len(ranges) == 2  # one link: the comma after it and the other schemes are not links
    assert view.text.get(ranges[0], ranges[1]) == "https://example.org/a?b=1&c=2"
    view.text.see(ranges[0])
    tk_root.update()
    x, y, _w, h = view.text.bbox(f"{ranges[0]} +3c")
    view.text.event_generate("<Motion>", x=x + 1, y=y + h // 2)  # the pointer over the link
    view.text.event_generate("<Button-1>", x=x + 1, y=y + h // 2)
    tk_root.update()
    assert opened == ["https://example.org/a?b=1&c=2"]
    assert split_links("no links here") == [("no links here", None)]


def test_an_emoji_has_a_glyph(make_app: Any, tk_root: Any, xdisplay: str) -> None:
    import ttkbootstrap as ttk
    app = make_app()

    def drawn(text: str) -> Any:
        label = ttk.Label(app.window, text=text, font=("TkDefaultFont", 24), background="white",
                          foreground="black")
        label.place(x=10, y=10)
        pump(tk_root, lambda: label.winfo_ismapped() and label.winfo_width() > 1, what="label drawn")
        for _ in range(3):
            tk_root.update()
        x, y = label.winfo_rootx(), label.winfo_rooty()
        image = ImageGrab.grab(xdisplay=xdisplay, bbox=(x, y, x + label.winfo_width(), y + label.winfo_height()))
        label.destroy()
        return image.convert("RGB")

    thumbs_up, missing = drawn("\U0001F44D"), drawn("\U000F0000")  # a private-use codepoint: no font has it
    assert thumbs_up.size != missing.size or ImageChops.difference(thumbs_up, missing).getbbox() is not None, \
        "👍 is drawn like a missing glyph: install an emoji font (fonts-symbola)"

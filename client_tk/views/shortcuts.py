"""The keyboard shortcuts: one table, bound on the window (and on the composer, whose Text class
bindings would otherwise eat Ctrl+K and friends) and listed in the help dialog."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

# (Tk sequences, keys as shown, what it does, how the main view does it)
Action = Callable[[Any], None]
SHORTCUTS: tuple[tuple[tuple[str, ...], str, str, Action], ...] = (
    (("<Control-k>", "<Control-K>"), "Ctrl+K", "Jump to a conversation", lambda m: m.switcher()),
    (("<Control-n>",), "Ctrl+N", "New direct chat", lambda m: m.new_chat()),
    (("<Control-g>",), "Ctrl+G", "New group", lambda m: m.new_group()),
    (("<Control-f>",), "Ctrl+F", "Find in this conversation", lambda m: m.find()),
    (("<Control-F>", "<Control-Shift-f>"), "Ctrl+Shift+F", "Search all conversations", lambda m: m.search_all()),
    (("<Alt-Down>",), "Alt+↓", "Next conversation", lambda m: m.step(1)),
    (("<Alt-Up>",), "Alt+↑", "Previous conversation", lambda m: m.step(-1)),
    (("<Alt-Shift-Down>",), "Alt+Shift+↓", "Next conversation with unread messages",
     lambda m: m.step(1, unread_only=True)),
    (("<Alt-Shift-Up>",), "Alt+Shift+↑", "Previous conversation with unread messages",
     lambda m: m.step(-1, unread_only=True)),
    (("<F1>",), "F1", "These shortcuts", lambda m: m.help()),
)

# keys of the composer and the search bar (bound where they act)
LOCAL_KEYS: tuple[tuple[str, str], ...] = (
    ("Enter", "Send the message"),
    ("Shift+Enter", "New line in the message"),
    ("↑ in an empty composer", "Edit your last message"),
    ("Esc", "Cancel the reply or the edit / close the search bar"),
    ("Enter / Shift+Enter in Find", "Next / previous match"),
    ("Right click on a message", "Reply, react, edit, copy, download, delete"),
    ("Click a reaction", "Add or take back your own"),
)


def _handler(action: Action, main: Any) -> Callable[[Any], str]:
    def run(event: Any) -> str:
        if main.winfo_exists():
            action(main)
        return "break"
    return run


def install_shortcuts(widget: Any, main: Any) -> None:
    """Bind every shortcut on ``widget`` (the window, or a text field) to the main view."""
    for sequences, _keys, _what, action in SHORTCUTS:
        for sequence in sequences:
            widget.bind(sequence, _handler(action, main))

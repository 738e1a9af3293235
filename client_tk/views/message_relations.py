# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Edits and reactions in the message view: the "(edited)" mark, the reaction chips, the menu.

A mixin of :class:`client_tk.views.messages.MessageView` (it uses its text
widget, its ``messages`` and ``_replace_block``).  A reaction chip
(``👍 2``) toggles our own reaction when clicked; ours are highlighted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from client_tk import bridge as b
from client_tk.core.events import Message, MessageChanged

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

QUICK_REACTIONS = ("👍", "❤️", "😂", "😮", "😢", "🎉")


class RelationsMixin:
    app: ParleyApp
    room_id: str
    text: Any
    messages: dict[str, Message]
    on_edit: Callable[[Message], None] | None
    _chips: dict[str, tuple[str, str]]

    def _replace_block(self, event_id: str, message: Message | None) -> None:
        raise NotImplementedError

    def _requote(self, event_id: str) -> None:
        raise NotImplementedError

    def _relation_tags(self) -> None:
        t = self.text
        self._chips = {}
        t.tag_configure("edited", foreground="#8a8f98", font=("TkDefaultFont", 8, "italic"))
        t.tag_configure("chip", background="#3a3f47", foreground="#e8eaed", font=("TkDefaultFont", 10),
                        lmargin1=4, lmargin2=4)
        t.tag_configure("chip-mine", background="#1f6f9f", foreground="white")
        t.tag_bind("chip", "<Button-1>", self._chip_clicked)
        t.tag_bind("chip", "<Enter>", lambda e: t.configure(cursor="hand2"))
        t.tag_bind("chip", "<Leave>", lambda e: t.configure(cursor="arrow"))

    def _message_changed(self, event: MessageChanged) -> None:
        message = event.message
        if message.room_id == self.room_id and message.event_id in self.messages:
            self._replace_block(message.event_id, message)
            self._requote(message.event_id)  # replies quote the new text

    def _write_relations(self, message: Message, put: Callable[..., None]) -> None:
        """After the body: the reaction chips (the "(edited)" mark is written with the body)."""
        if message.redacted or not message.reactions:
            return
        for key, who in message.reactions:
            name = f"chip:{len(self._chips)}"
            self._chips[name] = (message.event_id, key)
            mine = self.app.user_id in who
            put(f" {key} {len(who)} ", "chip", name, *(("chip-mine",) if mine else ()))
            put(" ")
        put("\n")

    def chip_names(self, event_id: str) -> list[str]:
        """The chips shown under a message, as text (for tests and screen readers)."""
        return [self.text.get(*self.text.tag_ranges(n)[:2]).strip() for n, (e, _) in self._chips.items()
                if e == event_id and self.text.tag_ranges(n)]

    def toggle_reaction(self, event_id: str, key: str) -> None:
        self.app.send(b.ToggleReaction(self.room_id, event_id, key))

    def _toggler(self, event_id: str, key: str) -> Callable[[], None]:
        return lambda: self.toggle_reaction(event_id, key)

    def _chip_clicked(self, event: Any) -> None:
        for tag in self.text.tag_names(f"@{event.x},{event.y}"):
            if tag in self._chips:
                self.toggle_reaction(*self._chips[tag])
                return

    def _react_menu(self, menu: Any, message: Message) -> None:
        """Context menu entry React ▸ (a few emoji; the same again takes ours back)."""
        import ttkbootstrap as ttk
        react = ttk.Menu(menu, tearoff=False)
        for key in QUICK_REACTIONS:
            react.add_command(label=key, command=self._toggler(message.event_id, key))
        menu.add_cascade(label="React", menu=react)

    def _edit_menu(self, menu: Any, message: Message) -> None:
        """Context menu entry Edit, for our own text messages."""
        edit = self.on_edit
        if message.sender == self.app.user_id and message.kind == "text" and edit is not None:
            def start_edit() -> None:
                edit(message)
            menu.add_command(label="Edit", command=start_edit)

    def last_own_text(self) -> Message | None:
        """Our newest text message still shown (Up in an empty composer edits it)."""
        for message in sorted(self.messages.values(), key=lambda m: (m.ts, m.event_id), reverse=True):
            if message.sender == self.app.user_id and message.kind == "text" and not message.redacted:
                return message
        return None

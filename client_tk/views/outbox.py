# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Messages of ours the server has not accepted yet, under the conversation.

One row per outbox entry of the room (from the core's :class:`OutboxChanged`):
"Sending…" while pending, "Not sent: <reason>" with *Retry* and *Delete* once
the server refused it.  The panel hides itself when nothing waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.core.events import OutboxChanged, OutgoingMessage, TransferProgress
from client_tk.views.errors import outbox_reason

if TYPE_CHECKING:
    from client_tk.app import ParleyApp


def waiting_text(entry: OutgoingMessage) -> str:
    """What a message not sent yet is waiting for."""
    if entry.state == "waiting":
        error = entry.error or ""
        return "Waiting for the connection…" if error.startswith("offline") else (error[:1].upper() + error[1:]
                                                                                   or "Waiting…")
    return "Waiting for the connection…" if entry.attempts else "Sending…"


class OutboxPanel(ttk.Frame):
    def __init__(self, master: Any, app: ParleyApp, room_id: str) -> None:
        super().__init__(master, padding=(10, 2))
        self.app = app
        self.room_id = room_id
        self.entries: tuple[OutgoingMessage, ...] = ()
        self.rows: dict[str, dict[str, Any]] = {}
        self._subs = [app.bus.subscribe(OutboxChanged, self._changed),
                      app.bus.subscribe(TransferProgress, self._progress)]

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        super().destroy()

    def _progress(self, event: TransferProgress) -> None:
        """An outbox file being uploaded (its local id is the transfer id): show how far it got."""
        row = self.rows.get(event.transfer_id)
        if row is None or "bar" not in row or event.direction != "upload" or not event.total:
            return
        if not row["bar"].winfo_ismapped():
            row["bar"].pack(side="right", padx=(4, 0))
            row["label"].configure(text=row["label"].cget("text").split("  ·  ")[0] + "  ·  Uploading…")
        row["bar"].configure(value=100 * event.done / event.total)

    def _changed(self, event: OutboxChanged) -> None:
        if event.room_id == self.room_id:
            self.show(event.entries)

    def show(self, entries: tuple[OutgoingMessage, ...]) -> None:
        self.entries = entries
        for old in self.rows.values():
            old["frame"].destroy()
        self.rows = {}
        for entry in entries:
            frame = ttk.Frame(self)
            frame.pack(side="top", fill="x", pady=1)
            failed = entry.state == "failed"
            status = f"Not sent: {outbox_reason(entry.error)}" if failed else waiting_text(entry)
            text = entry.body if len(entry.body) <= 60 else entry.body[:57] + "…"
            label = ttk.Label(frame, text=f"{text}  ·  {status}",
                              bootstyle="danger" if failed else "secondary")
            label.pack(side="left", fill="x", expand=True)
            row: dict[str, Any] = {"frame": frame, "label": label}
            if entry.kind in ("file", "image") and not failed:  # its upload's progress, once it runs
                row["bar"] = ttk.Progressbar(frame, length=120, maximum=100, bootstyle="info-striped")
            if failed:
                row["delete"] = ttk.Button(frame, text="Delete", bootstyle="secondary-outline",
                                           command=lambda i=entry.local_id: self.app.send(b.DiscardSend(i)))
                row["delete"].pack(side="right", padx=(4, 0))
                row["retry"] = ttk.Button(frame, text="Retry", bootstyle="warning-outline",
                                          command=lambda i=entry.local_id: self.app.send(b.RetrySend(i)))
                row["retry"].pack(side="right")
            self.rows[entry.local_id] = row

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The two security prompts of issue 15, as small dialogs of their own.

* **Pairing code** (:class:`PairingSasDialog`): both devices show the short code
  of the pairing transcript; the user answers whether the two screens match.
  "They differ" refuses the pairing (nothing secret is sent).
* **Safety number changed** (:class:`SafetyNumberDialog`): a contact's identity
  key changed; messages to them are held until the user accepts the new safety
  number shown here ("Not now" keeps them held).

:class:`SecurityPrompts` opens them when the worker reports the events.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.core.events import IdentityChanged
from client_tk.views.dialogs import Dialog

if TYPE_CHECKING:
    from client_tk.app import ParleyApp


class PairingSasDialog(Dialog):
    def __init__(self, app: ParleyApp, code: str) -> None:
        super().__init__(app, "Compare the security code")
        self.answered = False
        ttk.Label(self.body, text="Both devices show a security code. Do they match?",
                  wraplength=380).pack(anchor="w")
        ttk.Label(self.body, text=code, font=("TkFixedFont", 18)).pack(pady=12)
        row = ttk.Frame(self.body)
        row.pack(fill="x")
        ttk.Button(row, text="They match", bootstyle="success", command=lambda: self.answer(True)
                   ).pack(side="left", expand=True, fill="x", padx=(0, 4))
        ttk.Button(row, text="They differ", bootstyle="danger", command=lambda: self.answer(False)
                   ).pack(side="left", expand=True, fill="x", padx=(4, 0))
        self.protocol("WM_DELETE_WINDOW", lambda: self.answer(False))

    def answer(self, matches: bool) -> None:
        if not self.answered:
            self.answered = True
            self.app.send(b.ConfirmPairingSas(matches))
        self.destroy()


class SafetyNumberDialog(Dialog):
    def __init__(self, app: ParleyApp, event: IdentityChanged) -> None:
        super().__init__(app, "Safety number changed")
        self.event = event
        ttk.Label(self.body, text=event.notice, wraplength=420, justify="left").pack(anchor="w")
        ttk.Label(self.body, text="Accept only if you have checked the new number with them.",
                  bootstyle="secondary", wraplength=420).pack(anchor="w", pady=(8, 12))
        row = ttk.Frame(self.body)
        row.pack(fill="x")
        ttk.Button(row, text="Accept new safety number", bootstyle="warning", command=self.accept
                   ).pack(side="left", expand=True, fill="x", padx=(0, 4))
        ttk.Button(row, text="Not now", bootstyle="secondary", command=self.destroy
                   ).pack(side="left", expand=True, fill="x", padx=(4, 0))
        # (no status line: the held send's failure repeats this very notice)

    def accept(self) -> None:
        self.app.send(b.AcceptSafetyNumber(self.event.user_id, self.event.new_key))
        self.destroy()


class SecurityPrompts:
    """Opens the prompts (one per contact for safety numbers) as the events arrive."""

    def __init__(self, app: ParleyApp) -> None:
        self.app = app
        self.open: dict[str, SafetyNumberDialog] = {}
        self.sas: PairingSasDialog | None = None
        self._subs: list[Any] = [app.bus.subscribe(b.PairingSasShown, self._sas),
                                 app.bus.subscribe(IdentityChanged, self._identity)]

    def _sas(self, event: b.PairingSasShown) -> None:
        self.sas = PairingSasDialog(self.app, event.code)

    def _identity(self, event: IdentityChanged) -> None:
        shown = self.open.get(event.user_id)
        if shown is not None and shown.winfo_exists() and shown.event.new_key == event.new_key:
            return
        self.open[event.user_id] = SafetyNumberDialog(self.app, event)

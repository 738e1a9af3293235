# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""The first screen: log in, register (with the e-mail code), or pair this new device."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk

from client_tk import bridge as b
from client_tk.views.errors import human

if TYPE_CHECKING:
    from client_tk.app import ParleyApp


class AuthView(ttk.Frame):
    def __init__(self, master: Any, app: ParleyApp) -> None:
        super().__init__(master, padding=30)
        self.app = app
        box = ttk.Frame(self)
        box.place(relx=0.5, rely=0.45, anchor="center")
        ttk.Label(box, text="Parley", font=("TkDefaultFont", 28, "bold"), bootstyle="info").pack(pady=(0, 4))
        ttk.Label(box, text="End-to-end encrypted chat", bootstyle="secondary").pack(pady=(0, 16))
        row = ttk.Frame(box)
        row.pack(fill="x", pady=(0, 10))
        ttk.Label(row, text="Server", width=10).pack(side="left")
        self.server = ttk.StringVar(value=app.server)
        ttk.Entry(row, textvariable=self.server, width=40).pack(side="left", fill="x", expand=True)
        self.tabs = ttk.Notebook(box, bootstyle="dark")
        self.tabs.pack(fill="both")
        self.login_user, self.login_password = ttk.StringVar(), ttk.StringVar()
        self.reg_user, self.reg_password, self.reg_email = ttk.StringVar(), ttk.StringVar(), ttk.StringVar()
        self.code = ttk.StringVar()
        self.pair_user, self.pair_password = ttk.StringVar(), ttk.StringVar()
        self._login_tab()
        self._register_tab()
        self._pair_tab()
        self.status = ttk.Label(box, text="", bootstyle="danger", wraplength=420)
        self.status.pack(pady=(10, 0))
        self._subs = [app.bus.subscribe(b.CommandFailed, self._failed),
                      app.bus.subscribe(b.EmailCodeRequested, self._code_requested),
                      app.bus.subscribe(b.PairingCodeShown, self._pairing_code)]

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        super().destroy()

    @staticmethod
    def _field(parent: Any, label: str, var: Any, show: str = "") -> ttk.Entry:
        row = ttk.Frame(parent)
        row.pack(fill="x", pady=3)
        ttk.Label(row, text=label, width=14).pack(side="left")
        entry = ttk.Entry(row, textvariable=var, show=show, width=32)
        entry.pack(side="left", fill="x", expand=True)
        return entry

    def _login_tab(self) -> None:
        tab = ttk.Frame(self.tabs, padding=14)
        self.tabs.add(tab, text="Log in")
        self._field(tab, "User name", self.login_user)
        entry = self._field(tab, "Password", self.login_password, show="•")
        entry.bind("<Return>", lambda e: self.login())
        self.login_button = ttk.Button(tab, text="Log in", bootstyle="primary", command=self.login)
        self.login_button.pack(fill="x", pady=(10, 0))
        ttk.Label(tab, text="On a new computer, use “Pair this device”.", bootstyle="secondary").pack(pady=(8, 0))

    def _register_tab(self) -> None:
        tab = ttk.Frame(self.tabs, padding=14)
        self.tabs.add(tab, text="Register")
        self._field(tab, "Username", self.reg_user)
        self._field(tab, "Password", self.reg_password, show="•")
        self._field(tab, "E-mail", self.reg_email)
        self.register_button = ttk.Button(tab, text="Create account", bootstyle="success", command=self.register_account)
        self.register_button.pack(fill="x", pady=(10, 0))
        self.code_row = ttk.Frame(tab)
        self.code_label = ttk.Label(self.code_row, text="")
        self.code_label.pack(anchor="w")
        entry = ttk.Entry(self.code_row, textvariable=self.code, width=12)
        entry.pack(side="left", pady=4)
        entry.bind("<Return>", lambda e: self.submit_code())
        ttk.Button(self.code_row, text="Confirm", command=self.submit_code).pack(side="left", padx=6)

    def _pair_tab(self) -> None:
        tab = ttk.Frame(self.tabs, padding=14)
        self.tabs.add(tab, text="Pair this device")
        ttk.Label(tab, text="Get a code here, then type it on a device that is already logged in\n"
                            "(Devices → Pair a new device).", justify="left").pack(anchor="w", pady=(0, 6))
        self._field(tab, "User ID", self.pair_user)
        self._field(tab, "Password", self.pair_password, show="•")
        self.pair_button = ttk.Button(tab, text="Show pairing code", bootstyle="info", command=self.pair)
        self.pair_button.pack(fill="x", pady=(10, 0))
        self.pair_code = ttk.Label(tab, text="", font=("TkFixedFont", 26, "bold"), bootstyle="warning")
        self.pair_code.pack(pady=(10, 0))

    def _busy(self, button: ttk.Button, text: str) -> None:
        button.configure(state="disabled")
        self.status.configure(text=text, bootstyle="info")

    def login(self) -> None:
        self._busy(self.login_button, "Logging in…")
        self.app.send(b.Login(self.server.get().strip(), self.login_user.get().strip(), self.login_password.get()))

    def register_account(self) -> None:
        self._busy(self.register_button, "Creating the account and its keys…")
        self.app.send(b.Register(self.server.get().strip(), self.reg_user.get().strip(),
                                 self.reg_password.get(), self.reg_email.get().strip() or None))

    def submit_code(self) -> None:
        code = "".join(self.code.get().split())
        if not code.isdigit() or len(code) != 6:
            self.status.configure(text="The code has 6 digits: type it as it is in the e-mail.", bootstyle="danger")
            return
        self.app.send(b.SubmitEmailCode(code))
        self.status.configure(text="Checking the code…", bootstyle="info")

    def pair(self) -> None:
        self._busy(self.pair_button, "Asking the server for a pairing code…")
        self.app.send(b.PairThisDevice(self.server.get().strip(), self.pair_user.get().strip(),
                                       self.pair_password.get()))

    def _code_requested(self, event: b.EmailCodeRequested) -> None:
        self.code_label.configure(text=f"We sent a code to {event.email}. Type it here:")
        self.code_row.pack(fill="x", pady=(10, 0))
        if event.again:
            self.code.set("")
            self.status.configure(text="That code is not right. Check the e-mail and type the 6 digits again.",
                                  bootstyle="danger")
        else:
            self.status.configure(text="Waiting for the e-mail code…", bootstyle="info")

    def _pairing_code(self, event: b.PairingCodeShown) -> None:
        code = event.code
        self.pair_code.configure(text=f"{code[:4]} {code[4:]}" if len(code) == 8 else code)
        self.status.configure(text="Type this code on your other device. Waiting…", bootstyle="info")

    def _failed(self, event: b.CommandFailed) -> None:
        text = human(event)
        if text is None:
            return
        for button in (self.login_button, self.register_button, self.pair_button):
            button.configure(state="normal")
        if event.command == "Register":
            self.code_row.pack_forget()
        self.status.configure(text=text, bootstyle="danger")

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Registration and login as a person makes mistakes: a mistyped e-mail code is asked for
again (and the right one then works), a wrong password says so, the short name logs in, and no
screen ever shows a Matrix errcode or a crypto library's wording."""

from __future__ import annotations

import re
import secrets
from typing import Any

import pytest

from client_tk import bridge as b
from client_tk.views.auth import AuthView
from client_tk.views.errors import BY_CODE, human
from client_tk.views.main import MainView
from tests.gui.conftest import PASSWORD, Mailbox, pump

pytestmark = pytest.mark.gui
ERRCODE = re.compile(r"\bM_[A-Z_]+\b|PARLEY_|envelope|Error\b")


def status(view: AuthView) -> str:
    return str(view.status.cget("text"))


def test_wrong_code_wrong_password_and_the_short_name(gui_server: str, make_app: Any, tk_root: Any,
                                                      mailbox: Mailbox) -> None:
    app = make_app(gui_server, name="carol")
    view = app.screen
    assert isinstance(view, AuthView)
    name = f"carol{secrets.token_hex(3)}"
    email = f"{name}@example.test"
    view.tabs.select(1)
    view.reg_user.set(name)
    view.reg_password.set(PASSWORD)
    view.reg_email.set(email)
    view.register_button.invoke()
    pump(tk_root, lambda: view.code_row.winfo_ismapped(), what="code asked")
    right = mailbox.code_for(email, pump=tk_root.update)
    wrong = f"{(int(right) + 1) % 1_000_000:06d}"

    # not even a code: said at once, nothing sent
    view.code.set("12a")
    view.submit_code()
    assert "6 digits" in status(view)
    # a wrong code: said so, asked again, the field cleared, the registration still going
    view.code.set(wrong)
    view.submit_code()
    pump(tk_root, lambda: "not right" in status(view), what="wrong code said")
    assert view.code_row.winfo_ismapped() and view.code.get() == ""
    assert not ERRCODE.search(status(view)), status(view)
    view.code.set(right)
    view.submit_code()
    pump(tk_root, lambda: isinstance(app.screen, MainView), timeout=60, what="registered with the right code")
    user_id = app.user_id
    assert user_id is not None and user_id.startswith(f"@{name}:")

    app.send(b.Logout())
    pump(tk_root, lambda: isinstance(app.screen, AuthView), what="logged out")
    view = app.screen

    # an unknown short name
    view.login_user.set("nobody-here")
    view.login_password.set(PASSWORD)
    view.login()
    pump(tk_root, lambda: str(view.login_button.cget("state")) == "normal", what="unknown name answered")
    assert "No account by that name" in status(view) and not ERRCODE.search(status(view))
    # the short name with a wrong password
    view.login_user.set(name)
    view.login_password.set(PASSWORD + "x")
    view.login()
    pump(tk_root, lambda: str(view.login_button.cget("state")) == "normal", what="wrong password answered")
    assert status(view) == "Wrong password. Check it and try again."
    # the short name with the right one
    view.login_password.set(PASSWORD)
    view.login()
    pump(tk_root, lambda: isinstance(app.screen, MainView), timeout=60, what="logged in by the short name")
    assert app.user_id == user_id


def test_every_failure_reads_as_a_sentence() -> None:
    assert human(b.CommandFailed("SetTyping", "Server unreachable: …/typing/…", b.OFFLINE)) is None
    assert human(b.CommandFailed("MarkRead", "x", "M_FORBIDDEN")) is None
    assert human(b.CommandFailed("SendText", "ConnectError: …/send/…", b.OFFLINE)) is None  # the outbox says it
    # opening a conversation offline shows the stored messages; the connection label says offline
    assert human(b.CommandFailed("OpenRoom", "ReadTimeout: …/messages", b.OFFLINE)) is None
    assert human(b.CommandFailed("OpenRoom", "gone", "M_FORBIDDEN")) == BY_CODE["M_FORBIDDEN"]
    offline = human(b.CommandFailed("NewGroup", "ConnectError: …/createRoom", b.OFFLINE))
    assert offline is not None and "cannot reach the server" in offline
    assert human(b.CommandFailed("Login", "", "M_FORBIDDEN")) == "Wrong user name or password."
    assert human(b.CommandFailed("Register", "taken", "M_USER_IN_USE")) == BY_CODE["M_USER_IN_USE"]
    # an errcode without a sentence shows the server's words, never the code
    unknown = human(b.CommandFailed("RenameGroup", "name too long", "M_SOMETHING_NEW"))
    assert unknown == "Name too long."
    for code, sentence in BY_CODE.items():
        assert sentence and not ERRCODE.search(sentence), code

# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""People: a mistyped e-mail is caught before anything is sent, a chat with an address nobody
uses yet is titled by that address (not a random id), a stranger's direct chat is a message
request that can be blocked (m.ignored_user_list), and a muted conversation raises no alert."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from client_tk import bridge as b
from client_tk.views.dialogs import NewChatDialog
from tests.gui.conftest import DIRECT_HTTP_TIMEOUT, Mailbox, pump, screenshot
from tests.gui.test_outbox_panel import open_group, say
from tests.gui.test_two_clients import register

pytestmark = pytest.mark.gui


def ignored_by(server: str, app: Any) -> dict[str, Any]:
    client = app.worker.client
    path = f"{server}/_matrix/client/v3/user/{quote(app.user_id, safe='')}/account_data/m.ignored_user_list"
    answer = httpx.get(path, headers={"Authorization": f"Bearer {client.http.access_token}"},
                       timeout=DIRECT_HTTP_TIMEOUT)
    return dict(answer.json().get("ignored_users", {})) if answer.status_code == 200 else {}


def test_emails_requests_block_and_mute(gui_server: str, make_app: Any, tk_root: Any, mailbox: Mailbox,
                                        xdisplay: str) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")

    # a mistyped address: said at once, nothing sent
    alice.screen.new_chat()
    dialog = next(w for w in alice.window.winfo_children() if isinstance(w, NewChatDialog))
    dialog.email.set("bob@examplecom")
    dialog.start()
    assert "does not look like an e-mail address" in dialog.status.cget("text")
    # an address nobody uses yet: the chat carries the address, not a random id
    dialog.email.set("not-yet-here@example.test")
    dialog.start()
    pump(tk_root, lambda: alice.screen.conversation is not None, what="chat with the new address")
    assert alice.screen.conversation.title.cget("text") == "not-yet-here@example.test"
    pump(tk_root, lambda: any("they will read your messages when they join" in t for _, t in alice.toast.history),
         what="what happens next is said")

    # bob mutes one of alice's groups: its messages come in, with no alert and no badge
    quiet = open_group(alice, bob, tk_root, bob_email, "Quiet")
    loud = open_group(alice, bob, tk_root, bob_email, "Loud")
    calm = open_group(alice, bob, tk_root, bob_email, "Calm")
    assert not any(r.stranger for r in bob.rooms.invitations)
    bob.send(b.SetMuted(quiet, True))
    pump(tk_root, lambda: any(r.room_id == quiet and r.muted for r in bob.rooms.rooms), what="muted")
    pump(tk_root, lambda: bob.screen.conversation.room.room_id == calm, what="bob in Calm")
    for room_id, text in ((quiet, "psst, muted"), (loud, "hey, loud")):
        alice.screen.room_list.select(room_id)
        pump(tk_root, lambda r=room_id: alice.screen.conversation.room.room_id == r, what="alice's chat")
        say(alice, tk_root, text)
        pump(tk_root, lambda t=text: any(m.body == t for m in alice.screen.conversation.messages.messages.values()),
             what="sent")
    pump(tk_root, lambda: any(t == "hey, loud" for _, t in bob.alerts), what="the loud one alerts")
    assert "psst, muted" in [m.body for m in bob.worker.c.messages(quiet)]
    assert not any(t == "psst, muted" for _, t in bob.alerts)
    quiet_info = next(r for r in bob.rooms.rooms if r.room_id == quiet)
    assert quiet_info.unread == 0
    pump(tk_root, lambda: quiet not in bob.screen.room_list.rows
         or bob.screen.room_list.rows[quiet]["preview"].cget("text").startswith("muted · "), what="shown muted")

    # strangers' direct chats are message requests: bob accepts dora's, blocks carol's
    dora = make_app(gui_server, x=320, name="dora")
    register(dora, tk_root, mailbox, "dora")
    dora.send(b.NewDirectChat(bob_email))
    pump(tk_root, lambda: any(r.stranger and dora.user_id in r.members for r in bob.rooms.rooms)
         or any(r.stranger and r.inviter == dora.user_id for r in bob.rooms.invitations), what="dora's request")
    dora_room = next(r.room_id for r in (*bob.rooms.invitations, *bob.rooms.rooms) if r.stranger)
    pump(tk_root, lambda: dora_room in bob.screen.room_list.invite_rows, what="dora's request shown")
    bob.screen.room_list.invite_rows[dora_room]["accept"].invoke()
    pump(tk_root, lambda: dora_room in bob.screen.room_list and dora_room not in bob.screen.room_list.invite_rows,
         what="dora's chat accepted into the list")
    carol = make_app(gui_server, x=320, name="carol")
    register(carol, tk_root, mailbox, "carol")
    carol.send(b.NewDirectChat(bob_email))
    rooms = bob.screen.room_list
    pending = lambda: (*bob.rooms.invitations, *bob.rooms.rooms)  # noqa: E731
    pump(tk_root, lambda: any(r.stranger for r in pending()), what="a message request")
    request = next(r for r in pending() if r.stranger)
    assert request.peer == carol.user_id or request.inviter == carol.user_id
    assert request.room_id not in rooms  # not among the conversations until accepted
    pump(tk_root, lambda: request.room_id in rooms.invite_rows, what="request shown")
    row = rooms.invite_rows[request.room_id]
    assert row["request"] and row["block"] is not None
    screenshot(xdisplay, "people_01_request")
    row["block"].invoke()
    pump(tk_root, lambda: request.room_id not in rooms.invite_rows
         and not any(r.room_id == request.room_id for r in pending()), what="request gone")
    assert carol.user_id in ignored_by(gui_server, bob)

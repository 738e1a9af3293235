# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""A message the server refuses shows as "Not sent" under the conversation with Retry and
Delete, while the connection indicator stays "Connected" and other rooms keep working."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx
import pytest

from client_tk import bridge as b
from tests.gui.conftest import DIRECT_HTTP_TIMEOUT, Mailbox, pump, screenshot
from tests.gui.test_two_clients import body_text, register

pytestmark = pytest.mark.gui


def only_admins_send(server: str, app: Any, room_id: str, locked: bool) -> None:
    """Change the room's power levels as its creator, straight over HTTP."""
    client = app.worker.client
    assert client is not None
    headers = {"Authorization": f"Bearer {client.http.access_token}"}
    path = f"{server}/_matrix/client/v3/rooms/{quote(room_id, safe='')}/state/m.room.power_levels/"
    levels = httpx.get(path, headers=headers, timeout=DIRECT_HTTP_TIMEOUT).json()
    levels.setdefault("events", {})["m.room.encrypted"] = 100 if locked else 0
    httpx.put(path, headers=headers, json=levels, timeout=DIRECT_HTTP_TIMEOUT).raise_for_status()


def open_group(alice: Any, bob: Any, root: Any, bob_email: str, name: str) -> str:
    alice.screen.new_group()
    dialog = next(w for w in alice.window.winfo_children() if type(w).__name__ == "NewGroupDialog")
    dialog.name.set(name)
    dialog.invitees.insert("1.0", bob_email)
    dialog.create()
    pump(root, lambda: any(r.title == name for r in bob.rooms.invitations), what=f"invitation to {name}")
    room_id = str(next(r.room_id for r in bob.rooms.invitations if r.title == name))
    bob.screen.room_list.invite_rows[room_id]["accept"].invoke()
    pump(root, lambda: bob.screen.conversation is not None and bob.screen.conversation.room.room_id == room_id
         and bob.screen.conversation.messages.loaded, what=f"bob in {name}")
    return room_id


def say(app: Any, root: Any, text: str) -> None:
    app.screen.conversation.entry.insert("1.0", text)
    app.screen.conversation.send_message()


def test_refused_message_retry_and_delete(gui_server: str, make_app: Any, tk_root: Any,
                                          mailbox: Mailbox, xdisplay: str) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")
    open_room = open_group(alice, bob, tk_root, bob_email, "Open talk")
    locked = open_group(alice, bob, tk_root, bob_email, "Announcements")
    pump(tk_root, lambda: bob.screen.connection_label.cget("text") == "Connected", what="bob connected")
    only_admins_send(gui_server, alice, locked, True)
    failures: list[b.CommandFailed] = []
    bob.bus.subscribe(b.CommandFailed, failures.append)

    say(bob, tk_root, "may I speak?")
    panel = bob.screen.conversation.outbox
    pump(tk_root, lambda: [e.state for e in panel.entries] == ["failed"], what="shown as not sent")
    [row] = panel.rows.values()
    assert "Not sent: You are not allowed to do that here." in row["label"].cget("text")
    assert "M_FORBIDDEN" not in row["label"].cget("text")  # a sentence, not the errcode
    assert not [f for f in failures if f.command == "SendText"]  # shown on the message, not as an error
    screenshot(xdisplay, "outbox_01_not_sent")

    # another room still works, and the connection never left "Connected"
    bob.screen.room_list.select(open_room)
    pump(tk_root, lambda: bob.screen.conversation.room.room_id == open_room
         and bob.screen.conversation.messages.loaded, what="bob in the open room")
    say(bob, tk_root, "hello open room")
    alice.screen.room_list.select(open_room)
    pump(tk_root, lambda: alice.screen.conversation is not None
         and alice.screen.conversation.room.room_id == open_room
         and "hello open room" in body_text(alice), what="alice reads the open room")
    assert bob.screen.connection_label.cget("text") == "Connected"

    # back: the failed message is still there (from the core's outbox); retry once allowed
    bob.screen.room_list.select(locked)
    pump(tk_root, lambda: bob.screen.conversation.room.room_id == locked
         and [e.state for e in bob.screen.conversation.outbox.entries] == ["failed"], what="still not sent")
    only_admins_send(gui_server, alice, locked, False)
    panel = bob.screen.conversation.outbox
    next(iter(panel.rows.values()))["retry"].invoke()
    pump(tk_root, lambda: not panel.entries and "may I speak?" in body_text(bob), what="retried and sent")
    alice.screen.room_list.select(locked)
    pump(tk_root, lambda: alice.screen.conversation.room.room_id == locked
         and "may I speak?" in body_text(alice), what="alice gets the retried message")

    # refused again, then deleted: it never arrives
    only_admins_send(gui_server, alice, locked, True)
    say(bob, tk_root, "forget this one")
    pump(tk_root, lambda: [e.state for e in panel.entries] == ["failed"], what="refused again")
    next(iter(panel.rows.values()))["delete"].invoke()
    pump(tk_root, lambda: not panel.entries and not panel.rows, what="deleted")
    assert "forget this one" not in body_text(bob)
    assert bob.screen.connection_label.cget("text") == "Connected"

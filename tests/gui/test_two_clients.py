# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Two running GUI clients against a real homeserver: register (e-mail code), direct chat by
e-mail with an invitation to accept, messages both ways with a reply, an image, read state,
search with highlighted matches, a group; then pairing a second device.  Every assertion
reads widget state on the Tk thread; each test leaves a screenshot in artifacts/gui/."""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from client_tk.views.auth import AuthView
from client_tk.views.main import MainView
from tests.gui.conftest import PASSWORD, Mailbox, pump, screenshot

pytestmark = pytest.mark.gui


def register(app: Any, root: Any, mailbox: Mailbox, name: str) -> str:
    view = app.screen
    assert isinstance(view, AuthView)
    email = f"{name}-{secrets.token_hex(4)}@example.test"
    view.tabs.select(1)
    view.reg_user.set(f"{name}{secrets.token_hex(3)}")
    view.reg_password.set(PASSWORD)
    view.reg_email.set(email)
    view.register_button.invoke()
    try:
        pump(root, lambda: view.code_row.winfo_ismapped(), what=f"{name}: e-mail code asked")
    except AssertionError as exc:  # say what the screen said instead
        raise AssertionError(f"{exc}; the screen says {view.status.cget('text')!r}") from None
    view.code.set(mailbox.code_for(email, pump=root.update))
    view.submit_code()
    pump(root, lambda: isinstance(app.screen, MainView), timeout=60, what=f"{name}: logged in")
    return email


def body_text(app: Any) -> str:
    return str(app.screen.conversation.messages.text.get("1.0", "end"))


def test_two_clients_chat_image_invitation_search(gui_server: str, make_app: Any, tk_root: Any,
                                                  mailbox: Mailbox, tmp_path: Path) -> None:
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")
    pump(tk_root, lambda: alice.screen.connection_label.cget("text") == "Connected", what="alice connected")

    # alice starts a direct chat by e-mail; bob gets an invitation and accepts it
    alice.screen.new_chat()
    dialog = next(w for w in alice.window.winfo_children() if type(w).__name__ == "NewChatDialog")
    dialog.email.set(bob_email)
    dialog.start()
    pump(tk_root, lambda: alice.screen.conversation is not None, what="alice's chat opened")
    room_id = alice.screen.conversation.room.room_id
    rooms = bob.screen.room_list
    pump(tk_root, lambda: room_id in rooms.invite_rows or room_id in rooms.rows, what="bob sees the chat")
    if room_id in rooms.invite_rows:  # direct chats may be joined at once; groups are invitations (below)
        rooms.invite_rows[room_id]["accept"].invoke()
    pump(tk_root, lambda: room_id in rooms.rows, what="bob joined")
    assert room_id not in rooms.invite_rows
    rooms.select(room_id)
    pump(tk_root, lambda: bob.screen.conversation is not None and bob.screen.conversation.messages.loaded,
         what="bob's chat open")
    pump(tk_root, lambda: bob.user_id in alice.screen.conversation.room.members, what="alice sees bob joined")

    # messages both ways, a reply, read state
    chat = alice.screen.conversation
    chat.entry.insert("1.0", "Hello Bob, <b>not bold</b> & welcome")
    chat.send_message()
    pump(tk_root, lambda: "<b>not bold</b>" in body_text(bob), what="bob reads alice")
    bob_view = bob.screen.conversation.messages
    first = next(m for m in bob_view.messages.values() if "Hello Bob" in m.body)
    bob.screen.conversation.reply(first)
    bob.screen.conversation.entry.insert("1.0", "Hi Alice! Hello to you too")
    bob.screen.conversation.send_message()
    pump(tk_root, lambda: "Hi Alice!" in body_text(alice), what="alice reads bob")
    assert "↪ " in body_text(alice)  # the reply quote
    reply = next(m for m in chat.messages.messages.values() if m.body.startswith("Hi Alice"))
    assert reply.reply_to == first.event_id
    pump(tk_root, lambda: chat.messages.is_read(first.event_id), what="alice sees bob read her message")
    assert "✓✓" in body_text(alice)

    # an image, shown inline as a thumbnail on both sides
    picture = tmp_path / "sunset.png"
    Image.new("RGB", (640, 400), "#ff8800").save(picture)
    chat.send_path(str(picture), image=True)
    pump(tk_root, lambda: any(m.kind == "image" for m in bob_view.messages.values()), what="bob gets the image")
    image_id = next(m.event_id for m in bob_view.messages.values() if m.kind == "image")
    pump(tk_root, lambda: image_id in bob_view.images, what="bob's thumbnail decoded")
    pump(tk_root, lambda: bool(bob_view.text.image_names()), what="thumbnail in the text")
    assert bob_view.images[image_id].width() == 320

    # search with Ctrl+F: both "Hello" messages match, highlighted, stepping works
    bob.screen.find()
    bob_view.search_text.set("hello")
    pump(tk_root, lambda: len(bob_view.matches) == 2, what="two search matches")
    assert bob_view.search_bar.winfo_ismapped()
    assert bob_view.text.tag_ranges("current")
    assert bob_view.search_count.cget("text") == "2 of 2"
    bob_view.search_step(1)
    assert bob_view.search_count.cget("text") == "1 of 2"
    start, end = bob_view.matches[0]
    assert bob_view.text.get(start, end).lower() == "hello"

    # a group with bob invited: invitation accepted from the list
    alice.screen.new_group()
    dialog = next(w for w in alice.window.winfo_children() if type(w).__name__ == "NewGroupDialog")
    dialog.name.set("Book club")
    dialog.invitees.insert("1.0", bob_email)
    dialog.create()
    pump(tk_root, lambda: any(r.title == "Book club" for r in bob.rooms.invitations), what="group invitation")
    group = next(r for r in bob.rooms.invitations if r.title == "Book club")
    assert bob.screen.room_list.invite_rows[group.room_id]["title"] == "Book club"
    bob.screen.room_list.invite_rows[group.room_id]["accept"].invoke()
    pump(tk_root, lambda: group.room_id in bob.screen.room_list.rows, what="bob in the group")
    pump(tk_root, lambda: bob.screen.conversation.room.room_id == group.room_id, what="group opened")
    bob.screen.conversation.entry.insert("1.0", "Count me in")
    bob.screen.conversation.send_message()
    pump(tk_root, lambda: alice.screen.conversation is not None
         and alice.screen.conversation.room.room_id == group.room_id
         and "Count me in" in body_text(alice), what="alice reads the group")
    # back to the direct chat on bob's side for the screenshot, with the search open
    bob.screen.room_list.select(room_id)
    pump(tk_root, lambda: bob.screen.conversation.messages.loaded
         and bob.screen.conversation.messages.images, what="bob's chat again")
    bob.screen.find()
    bob.screen.conversation.messages.search_text.set("hello")
    pump(tk_root, lambda: len(bob.screen.conversation.messages.matches) == 2, what="search again")


def walk(widget: Any) -> Any:
    yield widget
    for child in widget.winfo_children():
        yield from walk(child)


def sas_text(dialog: Any) -> str:
    labels = [str(w.cget("text")) for w in walk(dialog) if w.winfo_class() == "TLabel"]
    return next(t for t in labels if t.count("-") == 2 and t.replace("-", "").isdigit())


def test_pairing_a_new_device(gui_server: str, make_app: Any, tk_root: Any, mailbox: Mailbox,
                              xdisplay: str) -> None:
    old = make_app(gui_server, x=0, name="old-device")
    register(old, tk_root, mailbox, "carol")
    new = make_app(gui_server, x=640, name="new-device")
    auth = new.screen
    auth.tabs.select(2)
    auth.pair_user.set(old.user_id)
    auth.pair_password.set(PASSWORD)
    auth.pair_button.invoke()
    pump(tk_root, lambda: len(auth.pair_code.cget("text").replace(" ", "")) == 8, what="pairing code shown")
    code = auth.pair_code.cget("text")
    old.screen.devices()
    from client_tk import bridge as b
    old.send(b.ApprovePairing(code))
    # Both devices show the security code of the pairing; the user compares and confirms both.
    pump(tk_root, lambda: old.security.sas is not None and new.security.sas is not None,
         timeout=60, what="both devices show the security code")
    shown = [sas_text(app.security.sas) for app in (old, new)]
    assert shown[0] == shown[1] and len(shown[0].replace("-", "")) == 12
    screenshot(xdisplay, "two_clients_pairing_code")
    for app in (old, new):
        next(w for w in walk(app.security.sas) if w.winfo_class() == "TButton"
             and w.cget("text") == "They match").invoke()
    pump(tk_root, lambda: isinstance(new.screen, MainView), timeout=60, what="new device logged in")
    assert new.user_id == old.user_id and new.device_id != old.device_id
    dialog = next(w for w in old.window.winfo_children() if type(w).__name__ == "DevicesDialog")
    dialog.refresh_button.invoke()
    pump(tk_root, lambda: new.device_id in dialog.table.get_children(), what="devices list shows the new one")
    assert dialog.table.item(old.device_id, "text").endswith("(this one)")

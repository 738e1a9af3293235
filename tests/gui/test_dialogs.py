# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Dialogs and list actions of two running GUI clients against a real homeserver, driven
through the widgets: declining an invitation, a favourite (moves to the top, survives logging
in again), deleting one's own message, the typing indicator, group info (rename, picture,
leave), the profile dialog (own: edit and save; other: read-only with the safety number),
the devices dialog, a file card download with its progress bar, and real avatars (a group
picture and a profile picture shown as images, not letters).

Modal ttkbootstrap dialogs (confirmations, the rename prompt) are answered by clicking their
buttons from an ``after`` callback; only the native file choosers are replaced (they are
separate windows of the platform).  Screenshots of the steps go to artifacts/gui/."""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from client_tk import bridge as b
from client_tk.views.dialogs import DevicesDialog, GroupInfoDialog, ProfileDialog
from client_tk.views.main import MainView
from tests.gui.conftest import PASSWORD, Mailbox, pump, screenshot
from tests.gui.test_two_clients import body_text, register

pytestmark = pytest.mark.gui
BLUE = (20, 60, 230)
GREEN = (20, 200, 60)


# ----------------------------------------------------------------- helpers
def walk(widget: Any) -> Iterator[Any]:
    yield widget
    for child in widget.winfo_children():
        yield from walk(child)


def answer_modal(root: Any, button: str, text: str | None = None, timeout: float = 60.0) -> dict[str, Any]:
    """Schedule a click on ``button`` of the next modal dialog (typing ``text`` into its entry
    first).  Returns a dict that gets ``clicked`` once done and ``prompt`` (the dialog's text)."""
    import tkinter as tk
    done: dict[str, Any] = {}
    deadline = time.monotonic() + timeout

    def attempt() -> None:
        for top in [w for w in walk(root) if isinstance(w, tk.Toplevel) and w.winfo_ismapped()]:
            widgets = list(walk(top))
            targets = [w for w in widgets if w.winfo_class() == "TButton" and w.cget("text") == button]
            if not targets or top.grab_current() is None:
                continue
            done["prompt"] = " ".join(str(w.cget("text")) for w in widgets if w.winfo_class() == "TLabel")
            if text is not None:
                entry = next(w for w in widgets if w.winfo_class() == "TEntry")
                entry.delete(0, "end")
                entry.insert(0, text)
            targets[0].invoke()
            done["clicked"] = True
            return
        if time.monotonic() < deadline:
            root.after(50, attempt)

    root.after(50, attempt)
    return done


def pixel(label: Any, x: int, y: int) -> tuple[int, int, int]:
    """The RGB shown by a label's image at (x, y), read back from Tk."""
    name = label.cget("image")
    name = name[0] if isinstance(name, tuple) else name
    value = label.tk.call(str(name), "get", x, y)
    if isinstance(value, str):
        value = value.split()
    return (int(value[0]), int(value[1]), int(value[2]))


def close_to(colour: tuple[int, int, int], want: tuple[int, int, int], slack: int = 30) -> bool:
    return all(abs(a - b_) <= slack for a, b_ in zip(colour, want, strict=True))


def dialog_of(app: Any, kind: type[Any]) -> Any:
    return next((w for w in app.window.winfo_children() if isinstance(w, kind) and w.winfo_exists()), None)


def row_order(app: Any) -> list[str]:
    """The visible rows from top to bottom, read from where they are placed."""
    rows = app.screen.room_list.rows
    return sorted(rows, key=lambda room_id: int(rows[room_id]["frame"].place_info()["y"]))


def picture_file(path: Path, colour: tuple[int, int, int]) -> str:
    Image.new("RGB", (300, 200), colour).save(path)
    return str(path)


# -------------------------------------------------------------------- test
def test_dialogs_and_actions(gui_server: str, make_app: Any, tk_root: Any, mailbox: Mailbox,
                             tmp_path: Path, xdisplay: str, monkeypatch: pytest.MonkeyPatch) -> None:
    began = time.monotonic()
    alice = make_app(gui_server, x=0, name="alice")
    bob = make_app(gui_server, x=640, name="bob")
    register(alice, tk_root, mailbox, "alice")
    bob_email = register(bob, tk_root, mailbox, "bob")

    # three groups from alice; bob declines one and accepts two
    for name in ("Book club", "Spam offers", "Zebra talk"):
        alice.send(b.NewGroup(name, (bob_email,)))
    pump(tk_root, lambda: len(bob.rooms.invitations) == 3, what="bob's three invitations")
    invites = {r.title: r.room_id for r in bob.rooms.invitations}
    rooms = bob.screen.room_list
    pump(tk_root, lambda: len(rooms.invite_rows) == 3, what="invitation rows")
    screenshot(xdisplay, "dialogs_01_invitations")
    rooms.invite_rows[invites["Spam offers"]]["decline"].invoke()
    pump(tk_root, lambda: invites["Spam offers"] not in rooms.invite_rows
         and not any(r.room_id == invites["Spam offers"] for r in bob.rooms.invitations), what="declined")
    assert invites["Spam offers"] not in rooms.rows
    rooms.invite_rows[invites["Zebra talk"]]["accept"].invoke()
    pump(tk_root, lambda: invites["Zebra talk"] in rooms.rows, what="bob in Zebra talk")
    rooms.invite_rows[invites["Book club"]]["accept"].invoke()
    pump(tk_root, lambda: invites["Book club"] in rooms.rows and not rooms.invite_rows, what="bob in Book club")
    assert not rooms.invites_box.winfo_ismapped()
    book, zebra = invites["Book club"], invites["Zebra talk"]
    pump(tk_root, lambda: bob.screen.conversation is not None and bob.screen.conversation.room.room_id == book
         and bob.screen.conversation.messages.loaded, what="bob's Book club open")
    alice.screen.room_list.select(book)
    pump(tk_root, lambda: alice.screen.conversation is not None and alice.screen.conversation.messages.loaded
         and bob.user_id in alice.screen.conversation.room.members, what="alice sees bob in Book club")
    # the declined group is gone from alice's view of its members' invitations too
    pump(tk_root, lambda: bob.user_id not in next(r for r in alice.rooms.rooms
                                                  if r.room_id == invites["Spam offers"]).invited,
         what="alice sees the decline")

    # typing: bob types, alice sees it under her conversation
    entry = bob.screen.conversation.entry
    entry.focus_force()
    for key in "hel":
        entry.event_generate("<KeyPress>", keysym=key)
    typing = alice.screen.conversation.typing
    pump(tk_root, lambda: typing.cget("text") == f"{alice.display_name(bob.user_id)} is typing…",
         what="alice sees bob typing")
    screenshot(xdisplay, "dialogs_02_typing")
    entry.delete("1.0", "end")
    entry.insert("1.0", "This one goes by mistake")
    bob.screen.conversation.send_message()
    pump(tk_root, lambda: typing.cget("text") == "", what="typing indicator cleared")

    # bob deletes his own message through the context menu; alice's view drops it
    view = bob.screen.conversation.messages
    pump(tk_root, lambda: any("by mistake" in m.body for m in view.messages.values()), what="bob's message")
    mistake = next(m for m in view.messages.values() if "by mistake" in m.body)
    pump(tk_root, lambda: "by mistake" in body_text(alice), what="alice got it")
    view.text.see(view.text.tag_ranges("ev:" + mistake.event_id)[0])
    tk_root.update()
    x, y, _, _ = view.text.bbox(view.text.tag_ranges("ev:" + mistake.event_id)[0])
    view.text.event_generate("<Button-3>", x=x + 5, y=y + 3, rootx=x, rooty=y)
    menu = view.menu
    labels = [menu.entrycget(i, "label") for i in range(menu.index("end") + 1)
              if menu.type(i) == "command"]
    assert "Delete for everyone" in labels and "Reply" in labels
    confirm = answer_modal(tk_root, "Yes")
    menu.unpost()
    menu.invoke(labels.index("Delete for everyone"))
    assert confirm.get("clicked") and "cannot be restored" in confirm["prompt"]
    alice_view = alice.screen.conversation.messages
    pump(tk_root, lambda: alice_view.messages[mistake.event_id].redacted, what="alice sees the deletion")
    assert "by mistake" not in body_text(alice) and "Message deleted" in body_text(alice)
    pump(tk_root, lambda: "by mistake" not in body_text(bob), what="bob's own view drops it")

    # a file card: alice sends 3 MB, bob downloads with the progress bar
    payload = tmp_path / "report.bin"
    payload.write_bytes(os.urandom(3 * 1024 * 1024))
    alice.screen.conversation.send_path(str(payload), image=False)
    pump(tk_root, lambda: any(m.kind == "file" for m in view.messages.values()), what="bob gets the file")
    file_id = next(m.event_id for m in view.messages.values() if m.kind == "file")
    pump(tk_root, lambda: file_id in view.cards, what="file card")
    card = view.cards[file_id]
    seen: list[float] = []
    unsubscribe = bob.bus.subscribe(b.DownloadProgress, lambda e: seen.append(float(card["bar"].cget("value"))))
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    monkeypatch.setattr("tkinter.filedialog.askdirectory", lambda **kw: str(downloads))
    card["button"].invoke()
    assert card["bar"].winfo_ismapped() or card["button"].cget("text") == "Downloading…"
    pump(tk_root, lambda: card["path"] is not None, timeout=60, what="download finished")
    unsubscribe()
    assert len(seen) >= 2 and max(seen) == pytest.approx(100.0)
    assert float(card["bar"].cget("value")) == pytest.approx(100.0)
    assert card["button"].cget("text") == "Saved ✓"
    assert Path(card["path"]).read_bytes() == payload.read_bytes()
    screenshot(xdisplay, "dialogs_03_download")

    # favourite: bob stars "Zebra talk", it moves above "Book club"
    pump(tk_root, lambda: row_order(bob)[:2] == [book, zebra], what="the active group first")
    name = rooms.rows[zebra]["name"]
    name.event_generate("<Button-3>", x=5, y=5, rootx=700, rooty=300)
    rooms.menu.unpost()
    assert rooms.menu.entrycget(0, "label") == "Add to favourites"
    rooms.menu.invoke(0)
    pump(tk_root, lambda: row_order(bob)[:2] == [zebra, book] and rooms.rows[zebra]["favourite"],
         what="favourite first")
    assert rooms.rows[zebra]["name"].cget("text").startswith("★ ")

    # group info (alice, the creator): rename, picture
    alice.screen.conversation.show_info()
    info = dialog_of(alice, GroupInfoDialog)
    assert info is not None and info.destroy_button is not None
    asked = answer_modal(tk_root, "Submit", text="Readers' circle")
    info.rename_button.invoke()
    assert asked.get("clicked")
    pump(tk_root, lambda: any(r.room_id == book and r.title == "Readers' circle" for r in bob.rooms.rooms),
         what="bob sees the new name")
    pump(tk_root, lambda: info.title_label.cget("text") == "Readers' circle", what="dialog renamed")
    monkeypatch.setattr("tkinter.filedialog.askopenfilename",
                        lambda **kw: picture_file(tmp_path / "group.png", BLUE))
    info.picture_button.invoke()
    pump(tk_root, lambda: rooms.rows.get(book, {}).get("picture"), what="bob's list shows the group picture")
    assert close_to(pixel(rooms.rows[book]["avatar"], 18, 18), BLUE)
    assert not rooms.rows[zebra]["picture"]  # no picture: the letter stays
    pump(tk_root, lambda: bool(getattr(bob.screen.conversation._avatar, "parley_picture", False)),
         what="bob's header shows the group picture")
    assert close_to(pixel(bob.screen.conversation.avatar, 19, 19), BLUE)
    pump(tk_root, lambda: getattr(info._avatar, "parley_picture", False), what="alice's dialog picture")
    screenshot(xdisplay, "dialogs_04_group_info")
    info.destroy()

    # own profile: name, a field with its visibility, a picture; saved
    alice.screen.profile()
    profile = dialog_of(alice, ProfileDialog)
    pump(tk_root, lambda: "displayname" in profile.vars, what="profile loaded")
    profile.vars["displayname"].set("Alice Liddell")
    profile.vars["im.parley.phone"].set("+41 79 000 00 00")
    assert profile.visibility["im.parley.phone"].get() in ("everyone", "shared_room", "nobody")
    profile.visibility["im.parley.phone"].set("nobody")
    monkeypatch.setattr("tkinter.filedialog.askopenfilename",
                        lambda **kw: picture_file(tmp_path / "me.png", GREEN))
    profile.change_avatar()
    pump(tk_root, lambda: ("Parley", "Profile picture changed") in alice.toast.history
         or any(t == "Profile picture changed" for _, t in alice.toast.history), what="picture saved")
    profile.save_button.invoke()
    # The name can reach the top bar through /sync before the other fields are saved:
    # wait for the worker's own word that the whole profile is stored.
    pump(tk_root, lambda: any(t == "Profile saved" for _, t in alice.toast.history), what="profile saved")
    pump(tk_root, lambda: alice.screen.me.cget("text").strip() == "Alice Liddell", what="top bar name")
    pump(tk_root, lambda: getattr(alice.screen._me, "parley_picture", False), what="top bar picture")
    assert close_to(pixel(alice.screen.me, 15, 15), GREEN)
    alice.screen.profile()
    again = dialog_of(alice, ProfileDialog)
    pump(tk_root, lambda: "displayname" in again.vars, what="profile again")
    assert again.vars["displayname"].get() == "Alice Liddell"
    assert again.vars["im.parley.phone"].get() == "+41 79 000 00 00"
    assert again.visibility["im.parley.phone"].get() == "nobody"
    pump(tk_root, lambda: getattr(again._avatar, "parley_picture", False), what="profile picture")
    screenshot(xdisplay, "dialogs_05_own_profile")
    again.destroy()

    # bob: group info shows alice's picture; her profile is read-only, with the safety number
    bob.screen.conversation.show_info()
    bob_info = dialog_of(bob, GroupInfoDialog)
    assert bob_info.destroy_button is None
    pump(tk_root, lambda: bob_info.member_rows.get(alice.user_id, {}).get("picture"),
         what="alice's picture among the members")
    assert close_to(pixel(bob_info.member_rows[alice.user_id]["avatar"], 13, 13), GREEN)
    assert "Alice Liddell" in bob_info.member_rows[alice.user_id]["name"].cget("text")
    pump(tk_root, lambda: "Alice Liddell" in body_text(bob), what="her new name on her messages")
    assert alice.user_id.split(":")[0][1:] not in body_text(bob)  # the old name is gone everywhere
    bob_info.member_rows[alice.user_id]["name"].event_generate("<Button-1>")
    other = dialog_of(bob, ProfileDialog)
    pump(tk_root, lambda: hasattr(other, "safety_button"), what="alice's profile for bob")
    assert not other.own and not other.vars
    assert not [w for w in walk(other) if w.winfo_class() in ("TEntry", "TCombobox")]
    assert "+41" not in " ".join(str(w.cget("text")) for w in walk(other) if w.winfo_class() == "TLabel")
    other.safety_button.invoke()
    pump(tk_root, lambda: "Compare" in other.safety.cget("text"), what="safety number shown")
    digits = "".join(ch for ch in other.safety.cget("text") if ch.isdigit())
    assert len(digits) >= 30
    pump(tk_root, lambda: getattr(other._avatar, "parley_picture", False), what="her picture in the profile")
    screenshot(xdisplay, "dialogs_06_other_profile")
    other.destroy()

    # leave (bob): the group goes from his list, alice's member list drops him
    leave = answer_modal(tk_root, "Yes")
    bob_info.leave_button.invoke()
    assert leave.get("clicked") and "Leave" in leave["prompt"]
    pump(tk_root, lambda: book not in rooms.rows and not dialog_of(bob, GroupInfoDialog), what="bob left")
    pump(tk_root, lambda: bob.user_id not in next(r for r in alice.rooms.rooms if r.room_id == book).members,
         what="alice sees bob leave")

    # devices (alice)
    alice.screen.devices()
    devices = dialog_of(alice, DevicesDialog)
    pump(tk_root, lambda: alice.device_id in devices.table.get_children(), what="devices listed")
    assert devices.table.item(alice.device_id, "text").endswith("(this one)")
    assert devices.table.item(alice.device_id, "values")[1] != ""
    screenshot(xdisplay, "dialogs_07_devices")
    devices.destroy()

    # the favourite survives logging in again on bob's device
    bob_id = bob.user_id
    pump(tk_root, lambda: True)
    bob.close()
    again_bob = make_app(gui_server, x=640, name="bob")
    auth = again_bob.screen
    auth.login_user.set(bob_id)
    auth.login_password.set(PASSWORD)
    auth.login_button.invoke()
    pump(tk_root, lambda: isinstance(again_bob.screen, MainView), timeout=60, what="bob logged in again")
    pump(tk_root, lambda: zebra in again_bob.screen.room_list.rows
         and again_bob.screen.room_list.rows[zebra]["favourite"], what="favourite after logging in again")
    assert row_order(again_bob)[0] == zebra
    print(f"\ndialog scenario took {time.monotonic() - began:.1f} s")


def test_bad_avatar_keeps_the_letter(make_app: Any, tk_root: Any, tmp_path: Path) -> None:
    """Undecodable or oversized pictures are refused before decoding; the letter stays."""
    from client_tk.widgets.images import MAX_AVATAR_BYTES, ImageRejected, avatar_rgba
    with pytest.raises(ImageRejected):
        avatar_rgba(b"\x89PNG\r\n\x1a\n" + secrets.token_bytes(200))
    with pytest.raises(ImageRejected):
        avatar_rgba(b"x" * (MAX_AVATAR_BYTES + 1))
    huge = tmp_path / "huge.png"
    Image.new("1", (9000, 9000)).save(huge)  # 81 Mpx, a few kB
    with pytest.raises(ImageRejected):
        avatar_rgba(huge.read_bytes())
    app = make_app()
    app.avatars.fail("mxc://example.test/broken")
    photo = app.avatar(app.window, "Zed", 36, "mxc://example.test/broken")
    assert photo.parley_picture is False
    square = avatar_rgba(_png(tmp_path, (400, 100)))
    assert (square.width, square.height) == (128, 128)


def _png(tmp_path: Path, size: tuple[int, int]) -> bytes:
    path = tmp_path / "wide.png"
    Image.new("RGB", size, BLUE).save(path)
    return path.read_bytes()

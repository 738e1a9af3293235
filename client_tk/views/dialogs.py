# mypy: disable-error-code="no-untyped-call"
# (ttkbootstrap 2.2 widgets are untyped)
"""Dialogs: new chat, new group, group info, profile, devices, safety number.

Each is a ``ttk.Toplevel`` that renders what the worker sends and sends
commands; destructive actions ask first, saying exactly what will happen.
"""

from __future__ import annotations

import re
import time
from tkinter import filedialog
from typing import TYPE_CHECKING, Any

import ttkbootstrap as ttk
from ttkbootstrap.dialogs import Messagebox, Querybox

from client_tk import bridge as b
from client_tk.core.events import DevicesChanged, PresenceChanged
from client_tk.views.errors import human

if TYPE_CHECKING:
    from client_tk.app import ParleyApp

IMAGE_TYPES = [("Images", "*.png *.jpg *.jpeg *.gif *.webp *.bmp")]
VISIBILITIES = ("everyone", "shared_room", "nobody")
EXTRA_FIELDS = (("im.parley.email", "E-mail"), ("im.parley.phone", "Phone"), ("im.parley.location", "Location"))


EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")


def confirm(parent: Any, title: str, text: str) -> bool:
    return Messagebox.yesno(text, title, parent=parent) in ("Yes", "yes", True)


class Dialog(ttk.Toplevel):
    def __init__(self, app: ParleyApp, title: str) -> None:
        super().__init__(title=title, master=app.window)
        self.app = app
        self.transient(app.window)
        self.body = ttk.Frame(self, padding=16)
        self.body.pack(fill="both", expand=True)
        self._subs: list[Any] = []
        self.status = ttk.Label(self.body, text="", bootstyle="danger", wraplength=380)
        self._subs.append(app.bus.subscribe(b.CommandFailed, self._failed))
        self.bind("<Escape>", lambda e: self.destroy())

    def destroy(self) -> None:
        for unsubscribe in self._subs:
            unsubscribe()
        super().destroy()

    def _failed(self, event: b.CommandFailed) -> None:
        text = human(event)
        if text is not None:
            self.status.configure(text=text)


class NewChatDialog(Dialog):
    """A direct chat with whoever owns an e-mail address."""

    def __init__(self, app: ParleyApp) -> None:
        super().__init__(app, "New direct chat")
        ttk.Label(self.body, text="E-mail address of the person:").pack(anchor="w")
        self.email = ttk.StringVar()
        entry = ttk.Entry(self.body, textvariable=self.email, width=36)
        entry.pack(fill="x", pady=6)
        entry.bind("<Return>", lambda e: self.start())
        entry.focus_set()
        ttk.Button(self.body, text="Start chat", bootstyle="primary", command=self.start).pack(fill="x")
        self.status.pack(pady=(8, 0))
        self._subs.append(app.bus.subscribe(b.RoomOpened, lambda e: self.destroy()))

    def start(self) -> None:
        if not EMAIL.fullmatch(self.email.get().strip()):
            self.status.configure(text="That does not look like an e-mail address (like name@example.org).",
                                  bootstyle="danger")
            return
        self.status.configure(text="Looking up…", bootstyle="info")
        self.app.send(b.NewDirectChat(self.email.get().strip()))


class NewGroupDialog(Dialog):
    def __init__(self, app: ParleyApp) -> None:
        super().__init__(app, "New group")
        ttk.Label(self.body, text="Group name:").pack(anchor="w")
        self.name = ttk.StringVar()
        ttk.Entry(self.body, textvariable=self.name, width=36).pack(fill="x", pady=(2, 8))
        ttk.Label(self.body, text="Invite (e-mail addresses or user IDs, one per line):").pack(anchor="w")
        self.invitees = ttk.Text(self.body, height=5, width=36)
        self.invitees.pack(fill="x", pady=(2, 8))
        ttk.Button(self.body, text="Create group", bootstyle="primary", command=self.create).pack(fill="x")
        self.status.pack(pady=(8, 0))
        self._subs.append(app.bus.subscribe(b.RoomOpened, lambda e: self.destroy()))

    def create(self) -> None:
        name = self.name.get().strip()
        if not name:
            self.status.configure(text="Give the group a name.")
            return
        people = tuple(line.strip() for line in self.invitees.get("1.0", "end").splitlines() if line.strip())
        self.status.configure(text="Creating…", bootstyle="info")
        self.app.send(b.NewGroup(name, people))


class GroupInfoDialog(Dialog):
    def __init__(self, app: ParleyApp, room: b.RoomInfo) -> None:
        super().__init__(app, f"Group — {room.title}")
        self.room = room
        self.is_creator = room.creator == app.user_id
        head = ttk.Frame(self.body)
        head.pack(fill="x")
        self._avatar = app.avatar(self, room.title, 56, room.avatar_url)
        self.avatar = ttk.Label(head, image=self._avatar)
        self.avatar.pack(side="left")
        self.title_label = ttk.Label(head, text=room.title, font=("TkDefaultFont", 14, "bold"))
        self.title_label.pack(side="left", padx=10)
        ttk.Label(self.body, text="MEMBERS", bootstyle="secondary", font=("TkDefaultFont", 8, "bold")
                  ).pack(anchor="w", pady=(12, 2))
        self.members = ttk.Frame(self.body)
        self.members.pack(fill="x")
        self._images: list[Any] = []
        self.member_rows: dict[str, dict[str, Any]] = {}
        row = ttk.Frame(self.body)
        row.pack(fill="x", pady=(10, 0))
        self.invite_who = ttk.StringVar()
        ttk.Entry(row, textvariable=self.invite_who, width=26).pack(side="left", fill="x", expand=True)
        ttk.Button(row, text="Invite", bootstyle="info", command=self.invite).pack(side="left", padx=(6, 0))
        actions = ttk.Frame(self.body)
        actions.pack(fill="x", pady=(12, 0))
        self.rename_button = ttk.Button(actions, text="Rename…", command=self.rename, bootstyle="secondary")
        self.rename_button.pack(side="left")
        self.picture_button = ttk.Button(actions, text="Change picture…", command=self.change_avatar,
                                         bootstyle="secondary")
        self.picture_button.pack(side="left", padx=6)
        self.leave_button = ttk.Button(actions, text="Leave", command=self.leave, bootstyle="warning-outline")
        self.leave_button.pack(side="left")
        self.destroy_button: Any = None
        if self.is_creator:
            self.destroy_button = ttk.Button(actions, text="Destroy group", command=self.destroy_group,
                                             bootstyle="danger")
            self.destroy_button.pack(side="left", padx=6)
        self.status.pack(pady=(8, 0))
        self._subs += [app.bus.subscribe(b.RoomsSnapshot, self._rooms),
                       app.bus.subscribe(PresenceChanged, lambda e: self.render()),
                       app.bus.subscribe(b.AvatarReady, lambda e: self._show_avatars())]
        self.render()
        app.send(b.RefreshProfiles((*room.members, *room.invited)))  # names and pictures may have changed

    def _show_avatars(self) -> None:
        self._avatar = self.app.avatar(self, self.room.title, 56, self.room.avatar_url)
        self.avatar.configure(image=self._avatar)
        self.render()

    def _rooms(self, event: b.RoomsSnapshot) -> None:
        for room in event.rooms:
            if room.room_id == self.room.room_id:
                self.room = room
                self.title_label.configure(text=room.title)
                self.title(f"Group — {room.title}")
                self._show_avatars()
                return
        self.destroy()  # left or destroyed

    def render(self) -> None:
        for child in self.members.winfo_children():
            child.destroy()
        self._images.clear()
        self.member_rows.clear()
        people = [(u, "member") for u in self.room.members] + [(u, "invited") for u in self.room.invited]
        for user, role in people:
            line = ttk.Frame(self.members, padding=2)
            line.pack(fill="x")
            image = self.app.avatar(self, self.app.display_name(user), 26, self.app.user_avatars.get(user),
                                    self.app.online(user))
            self._images.append(image)
            avatar = ttk.Label(line, image=image)
            avatar.pack(side="left")
            extra = " (creator)" if user == self.room.creator else " (invited)" if role == "invited" else ""
            state = "online" if self.app.online(user) else "offline"
            name = ttk.Label(line, text=f"{self.app.display_name(user)}{extra} · {state}", cursor="hand2")
            name.pack(side="left", padx=6)
            name.bind("<Button-1>", self._open_profile(user))
            self.member_rows[user] = {"avatar": avatar, "name": name, "picture": bool(image.parley_picture)}
            if self.is_creator and user != self.app.user_id:
                ttk.Button(line, text="Remove", bootstyle="danger-link",
                           command=lambda u=user: self.remove(u)).pack(side="right")

    def _open_profile(self, user: str) -> Any:
        return lambda event: ProfileDialog(self.app, user)

    def invite(self) -> None:
        who = self.invite_who.get().strip()
        if who:
            self.app.send(b.InviteMember(self.room.room_id, who))
            self.invite_who.set("")

    def remove(self, user: str) -> None:
        name = self.app.display_name(user)
        if confirm(self, "Remove member", f"Remove {name} from “{self.room.title}”? They will no longer "
                                          "receive new messages of this group."):
            self.app.send(b.RemoveMember(self.room.room_id, user))

    def rename(self) -> None:
        name = Querybox.get_string("New name of the group:", "Rename group", initialvalue=self.room.title,
                                   parent=self)
        if name and name.strip():
            self.app.send(b.RenameGroup(self.room.room_id, name.strip()))

    def change_avatar(self) -> None:
        path = filedialog.askopenfilename(parent=self, title="Group picture", filetypes=IMAGE_TYPES)
        if path:
            self.app.send(b.SetGroupAvatar(self.room.room_id, path))

    def leave(self) -> None:
        if confirm(self, "Leave group", f"Leave “{self.room.title}”? You will stop receiving its messages "
                                        "and need a new invitation to come back."):
            self.app.send(b.LeaveRoom(self.room.room_id))

    def destroy_group(self) -> None:
        if confirm(self, "Destroy group", f"Destroy “{self.room.title}” for everyone? All members are "
                                          "removed and its files are deleted from the server. "
                                          "This cannot be undone."):
            self.app.send(b.DestroyGroup(self.room.room_id))


class ProfileDialog(Dialog):
    """Own profile: editable with visibility per field; someone else's: read-only."""

    def __init__(self, app: ParleyApp, user_id: str) -> None:
        super().__init__(app, "Profile")
        self.user_id = user_id
        self.own = user_id == app.user_id
        head = ttk.Frame(self.body)
        head.pack(fill="x")
        self.avatar_url = app.user_avatars.get(user_id)
        self.avatar = ttk.Label(head)
        self.avatar.pack(side="left")
        self._show_avatar()
        names = ttk.Frame(head)
        names.pack(side="left", padx=12)
        self.name_label = ttk.Label(names, text=app.display_name(user_id), font=("TkDefaultFont", 15, "bold"))
        self.name_label.pack(anchor="w")
        ttk.Label(names, text=user_id, bootstyle="secondary").pack(anchor="w")
        if self.own:
            ttk.Button(names, text="Change picture…", bootstyle="secondary-link", command=self.change_avatar
                       ).pack(anchor="w")
        self.form = ttk.Frame(self.body)
        self.form.pack(fill="x", pady=(12, 0))
        self.vars: dict[str, Any] = {}
        self.visibility: dict[str, Any] = {}
        self.values: dict[str, str] = {}
        ttk.Label(self.form, text="Loading…", bootstyle="secondary").grid(row=0, column=0)
        self.status.pack(pady=(8, 0))
        self._subs.append(app.bus.subscribe(b.ProfileLoaded, self._loaded))
        self._subs.append(app.bus.subscribe(b.SafetyNumberShown, self._safety))
        self._subs.append(app.bus.subscribe(b.AvatarReady, lambda e: self._show_avatar()
                                            if e.mxc == self.avatar_url else None))
        app.send(b.GetProfile(user_id))

    def _show_avatar(self) -> None:
        name = self.values.get("displayname") if hasattr(self, "values") else None
        self._avatar = self.app.avatar(self, name or self.app.display_name(self.user_id), 72, self.avatar_url,
                                       None if self.own else self.app.online(self.user_id))
        self.avatar.configure(image=self._avatar)

    def _loaded(self, event: b.ProfileLoaded) -> None:
        if event.user_id != self.user_id:
            return
        for child in self.form.winfo_children():
            child.destroy()
        self.values = dict(event.fields)
        url = self.values.get("avatar_url")
        self.avatar_url = url if url and url.startswith("mxc://") else None
        self._show_avatar()
        visibility = dict(event.visibility)
        rows = [("displayname", "Display name"), *EXTRA_FIELDS]
        for i, (key, label) in enumerate(rows):
            ttk.Label(self.form, text=label, width=14).grid(row=i, column=0, sticky="w", pady=3)
            value = self.values.get(key, "")
            if self.own:
                var = ttk.StringVar(value=value)
                self.vars[key] = var
                ttk.Entry(self.form, textvariable=var, width=28).grid(row=i, column=1, sticky="we")
                if key != "displayname":
                    vis = ttk.StringVar(value=visibility.get(key, "shared_room"))
                    self.visibility[key] = vis
                    ttk.Combobox(self.form, textvariable=vis, values=VISIBILITIES, width=12, state="readonly"
                                 ).grid(row=i, column=2, padx=(6, 0))
            else:
                ttk.Label(self.form, text=value or "—").grid(row=i, column=1, sticky="w")
        if self.own:
            ttk.Label(self.form, text="Who can see each field: everyone, people in a shared "
                                      "conversation, or nobody.", bootstyle="secondary", wraplength=380
                      ).grid(row=len(rows), column=0, columnspan=3, sticky="w", pady=(6, 0))
            self.save_button = ttk.Button(self.form, text="Save", bootstyle="primary", command=self.save)
            self.save_button.grid(row=len(rows) + 1, column=0, columnspan=3, sticky="we", pady=(10, 0))
        else:
            self.safety = ttk.Label(self.form, text="", font=("TkFixedFont", 11), justify="left")
            self.safety_button = ttk.Button(self.form, text="Show safety number", bootstyle="info-outline",
                                            command=lambda: self.app.send(b.GetSafetyNumber(self.user_id)))
            self.safety_button.grid(row=len(rows), column=0, columnspan=2, sticky="w", pady=(10, 0))
            self.safety.grid(row=len(rows) + 1, column=0, columnspan=3, sticky="w", pady=(6, 0))
        if "displayname" in self.values:
            self.name_label.configure(text=self.values["displayname"])

    def _safety(self, event: b.SafetyNumberShown) -> None:
        if event.user_id == self.user_id and hasattr(self, "safety"):
            groups = event.number.split()
            lines = [" ".join(groups[i:i + 4]) for i in range(0, len(groups), 4)]
            self.safety.configure(text="Compare with your contact's screen:\n" + "\n".join(lines))

    def save(self) -> None:
        fields = tuple((k, v.get()) for k, v in self.vars.items() if v.get() != self.values.get(k, ""))
        visibility = tuple((k, v.get()) for k, v in self.visibility.items())
        self.app.send(b.SaveProfile(fields, visibility))
        self.destroy()

    def change_avatar(self) -> None:
        path = filedialog.askopenfilename(parent=self, title="Profile picture", filetypes=IMAGE_TYPES)
        if path:
            self.app.send(b.SetAvatar(path))


class DevicesDialog(Dialog):
    def __init__(self, app: ParleyApp) -> None:
        super().__init__(app, "Devices")
        self.table = ttk.Treeview(self.body, columns=("name", "seen"), show="tree headings", height=6)
        self.table.heading("#0", text="Device")
        self.table.heading("name", text="Name")
        self.table.heading("seen", text="Last seen")
        self.table.column("#0", width=200)
        self.table.pack(fill="both", expand=True)
        buttons = ttk.Frame(self.body)
        buttons.pack(fill="x", pady=(10, 0))
        ttk.Button(buttons, text="Remove device…", bootstyle="danger-outline", command=self.remove
                   ).pack(side="left")
        ttk.Button(buttons, text="Pair a new device…", bootstyle="info", command=self.pair).pack(side="right")
        self.refresh_button = ttk.Button(buttons, text="Refresh", bootstyle="secondary-outline",
                                         command=lambda: self.app.send(b.ListDevices()))
        self.refresh_button.pack(side="right", padx=6)
        self.status.pack(pady=(8, 0))
        self.current = ""
        self._subs.append(app.bus.subscribe(b.DevicesLoaded, self._loaded))
        self._subs.append(app.bus.subscribe(DevicesChanged, lambda e: self.app.send(b.ListDevices())
                                            if app.user_id in e.user_ids else None))
        app.send(b.ListDevices())

    def _loaded(self, event: b.DevicesLoaded) -> None:
        self.current = event.current
        self.table.delete(*self.table.get_children())
        for device_id, name, seen in event.devices:
            when = time.strftime("%d.%m.%Y %H:%M", time.localtime(seen / 1000)) if seen else "—"
            label = device_id + (" (this one)" if device_id == event.current else "")
            self.table.insert("", "end", iid=device_id, text=label, values=(name, when))

    def remove(self) -> None:
        selected = self.table.selection()
        if not selected:
            self.status.configure(text="Select a device first.")
            return
        device = selected[0]
        if device == self.current:
            self.status.configure(text="This is the device you are using: log out instead.")
            return
        if not confirm(self, "Remove device", f"Remove device {device}? It is logged out at once and "
                                              "can no longer read new messages."):
            return
        password = Querybox.get_string("Your password, to confirm:", "Remove device", parent=self)
        if password:
            self.app.send(b.RemoveDevice(device, password))

    def pair(self) -> None:
        code = Querybox.get_string("Type the 8-digit code the new device shows:", "Pair a new device",
                                   parent=self)
        if code:
            self.app.send(b.ApprovePairing(code))

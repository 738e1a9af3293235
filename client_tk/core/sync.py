"""Sans-I/O reading of ``/sync`` responses and the room state they build.

:func:`parse_sync` turns one response into a :class:`SyncBatch`;
:class:`RoomState` folds state events (membership, name, avatar, power
levels, direct flag) into what the client needs; :class:`RoomView` is its
immutable, committed snapshot that readers (UI, CLI, tests) get.  No
network, no store.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from client_tk.core.keys import OTK_ALGORITHM, SPK_AGE_FIELD
from common.crypto.kem_prekeys import KEM_KEY_ALGORITHM

JsonDict = dict[str, Any]


@dataclass
class RoomDelta:
    room_id: str
    membership: str
    timeline: list[JsonDict] = field(default_factory=list)
    state: list[JsonDict] = field(default_factory=list)
    ephemeral: list[JsonDict] = field(default_factory=list)
    account_data: list[JsonDict] = field(default_factory=list)
    limited: bool = False
    prev_batch: str | None = None
    unread: int | None = None


@dataclass
class SyncBatch:
    next_batch: str
    rooms: list[RoomDelta] = field(default_factory=list)
    to_device: list[JsonDict] = field(default_factory=list)
    presence: list[JsonDict] = field(default_factory=list)
    account_data: list[JsonDict] = field(default_factory=list)
    devices_changed: list[str] = field(default_factory=list)
    devices_left: list[str] = field(default_factory=list)
    otk_count: int | None = None
    spk_age_ms: int | None = None
    kem_count: int | None = None  # unclaimed one-time KEM pre-keys on the server
    kem_fallback_unused: bool | None = None  # False: the last-resort KEM key was handed out


def _events(section: Any, key: str = "events") -> list[JsonDict]:
    if not isinstance(section, dict):
        return []
    items = section.get(key)
    return [e for e in items if isinstance(e, dict)] if isinstance(items, list) else []


def parse_sync(body: JsonDict) -> SyncBatch:
    next_batch = body.get("next_batch")
    if not isinstance(next_batch, str) or not next_batch:
        raise ValueError("sync response without next_batch")
    batch = SyncBatch(next_batch)
    rooms = body.get("rooms") if isinstance(body.get("rooms"), dict) else {}
    assert isinstance(rooms, dict)
    for membership, section in (("join", "join"), ("invite", "invite"), ("leave", "leave")):
        entries = rooms.get(section)
        if not isinstance(entries, dict):
            continue
        for room_id, data in entries.items():
            if not isinstance(room_id, str) or not isinstance(data, dict):
                continue
            delta = RoomDelta(room_id, membership)
            if membership == "invite":
                delta.state = _events(data.get("invite_state"))
            else:
                timeline = data.get("timeline") if isinstance(data.get("timeline"), dict) else {}
                assert isinstance(timeline, dict)
                delta.timeline = _events(timeline)
                delta.limited = bool(timeline.get("limited", False))
                prev = timeline.get("prev_batch")
                delta.prev_batch = prev if isinstance(prev, str) else None
                delta.state = _events(data.get("state"))
                delta.ephemeral = _events(data.get("ephemeral"))
                delta.account_data = _events(data.get("account_data"))
                unread = data.get("unread_notifications")
                if isinstance(unread, dict) and isinstance(unread.get("notification_count"), int):
                    delta.unread = unread["notification_count"]
            batch.rooms.append(delta)
    batch.to_device = _events(body.get("to_device"))
    batch.presence = _events(body.get("presence"))
    batch.account_data = _events(body.get("account_data"))
    lists = body.get("device_lists")
    if isinstance(lists, dict):
        batch.devices_changed = [u for u in lists.get("changed", []) if isinstance(u, str)]
        batch.devices_left = [u for u in lists.get("left", []) if isinstance(u, str)]
    counts = body.get("device_one_time_keys_count")
    if isinstance(counts, dict):
        value = counts.get(OTK_ALGORITHM, 0)
        batch.otk_count = value if isinstance(value, int) else 0
        kem = counts.get(KEM_KEY_ALGORITHM, 0)
        batch.kem_count = kem if isinstance(kem, int) else 0
    unused = body.get("device_unused_fallback_key_types")
    if isinstance(unused, list):
        batch.kem_fallback_unused = KEM_KEY_ALGORITHM in unused
    age = body.get(SPK_AGE_FIELD)
    batch.spk_age_ms = age if isinstance(age, int) else None
    return batch


@dataclass
class RoomState:
    """What the client tracks per room (persisted as JSON in the store)."""

    room_id: str
    membership: str = "join"
    name: str | None = None
    avatar_url: str | None = None
    is_direct: bool = False
    creator: str | None = None
    members: dict[str, str] = field(default_factory=dict)  # user -> membership
    power: dict[str, int] = field(default_factory=dict)
    inviter: str | None = None
    tags: list[str] = field(default_factory=list)
    unread: int = 0
    last_read: str | None = None

    @property
    def joined(self) -> list[str]:
        return sorted(u for u, m in self.members.items() if m == "join")

    @property
    def recipients(self) -> list[str]:
        """Users whose devices must be able to read what we send now."""
        return sorted(u for u, m in self.members.items() if m in ("join", "invite"))

    def apply(self, event: JsonDict) -> bool:
        """Fold one state event in; True if something the UI shows changed."""
        kind, content, key = event.get("type"), event.get("content"), event.get("state_key")
        if not isinstance(content, dict) or not isinstance(key, str):
            return False
        if kind == "m.room.member":
            membership = content.get("membership")
            if isinstance(membership, str):
                self.members[key] = membership
                if content.get("is_direct") is True:
                    self.is_direct = True
            return True
        if kind == "m.room.name":
            name = content.get("name")
            self.name = name if isinstance(name, str) and name else None
            return True
        if kind == "m.room.avatar":
            url = content.get("url")
            self.avatar_url = url if isinstance(url, str) and url else None
            return True
        if kind == "m.room.create":
            creator = content.get("creator", event.get("sender"))
            self.creator = creator if isinstance(creator, str) else None
            if content.get("im.parley.is_direct") is True or content.get("is_direct") is True:
                self.is_direct = True
            return True
        if kind == "m.room.power_levels":
            users = content.get("users")
            if isinstance(users, dict):
                self.power = {u: int(v) for u, v in users.items() if isinstance(v, int)}
            return False
        return False

    def copy(self) -> RoomState:
        return copy.deepcopy(self)

    def view(self) -> RoomView:
        return RoomView(self.room_id, self.membership, self.name, self.avatar_url, self.is_direct,
                        self.creator, MappingProxyType(dict(self.members)),
                        MappingProxyType(dict(self.power)), self.inviter, tuple(self.tags),
                        self.unread, self.last_read)

    def to_dict(self) -> JsonDict:
        return {"room_id": self.room_id, "membership": self.membership, "name": self.name,
                "avatar_url": self.avatar_url, "is_direct": self.is_direct, "creator": self.creator,
                "members": self.members, "power": self.power, "inviter": self.inviter,
                "tags": self.tags, "unread": self.unread, "last_read": self.last_read}

    @classmethod
    def from_dict(cls, d: JsonDict) -> RoomState:
        return cls(d["room_id"], d.get("membership", "join"), d.get("name"), d.get("avatar_url"),
                   bool(d.get("is_direct")), d.get("creator"), dict(d.get("members", {})),
                   dict(d.get("power", {})), d.get("inviter"), list(d.get("tags", [])),
                   int(d.get("unread", 0)), d.get("last_read"))


@dataclass(frozen=True)
class RoomView:
    """A committed room state: immutable, safe to read from any thread."""

    room_id: str
    membership: str
    name: str | None
    avatar_url: str | None
    is_direct: bool
    creator: str | None
    members: Mapping[str, str]
    power: Mapping[str, int]
    inviter: str | None
    tags: tuple[str, ...]
    unread: int
    last_read: str | None

    @property
    def joined(self) -> list[str]:
        return sorted(u for u, m in self.members.items() if m == "join")

    @property
    def invited(self) -> list[str]:
        return sorted(u for u, m in self.members.items() if m == "invite")

    @property
    def recipients(self) -> list[str]:
        """Users whose devices must be able to read what we send now."""
        return sorted(u for u, m in self.members.items() if m in ("join", "invite"))

    @property
    def favourite(self) -> bool:
        return "m.favourite" in self.tags or "favourite" in self.tags

"""Rooms as plain state maps, for the auth rules on plain data (``test_event_auth_*.py``).

Every room starts alike: ``alice`` created it (level 100; from v12 the
creator's power is implied, not listed), ``mod`` has 50 (the level invite,
kick, ban, redact, state and the room name need), ``peer`` has 50 too,
``bob`` is a plain member, ``dave`` is banned, ``frank`` is invited, ``kim``
knocked (v7+), ``eve`` has never been in the room, ``zed`` is of another
server.  The join rule is ``invite`` unless a test changes it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import pytest

from homeserver.services.event_auth import AuthError, StateMap, check_event_allowed
from homeserver.services.events import compute_event_id
from homeserver.services.room_versions import ROOM_VERSIONS

JsonDict = dict[str, Any]
VERSIONS = list(ROOM_VERSIONS)

ALICE, MOD, PEER, BOB = "@alice:hs", "@mod:hs", "@peer:hs", "@bob:hs"
DAVE, FRANK, KIM, EVE, ZED = "@dave:hs", "@frank:hs", "@kim:hs", "@eve:hs", "@zed:other"


def versions(**flags: bool) -> list[str]:
    """The room versions whose rules have these switches (``knocking=True``, ...)."""
    return [v for v, rules in ROOM_VERSIONS.items() if all(getattr(rules, k) == want for k, want in flags.items())]


def create_event(version: str, sender: str = ALICE, **extra: Any) -> JsonDict:
    content: JsonDict = {"room_version": version, **extra}
    if not ROOM_VERSIONS[version].creator_is_sender:
        content.setdefault("creator", sender)
    event: JsonDict = {"type": "m.room.create", "state_key": "", "sender": sender, "content": content,
                       "prev_events": [], "auth_events": [], "depth": 1, "origin_server_ts": 0}
    if not ROOM_VERSIONS[version].room_id_from_create:
        event["room_id"] = "!room:hs"
    if ROOM_VERSIONS[version].event_format == "v1":
        event["event_id"] = "$create:hs"
    return event


def base_levels(version: str) -> JsonDict:
    users = {MOD: 50, PEER: 50}
    if not ROOM_VERSIONS[version].infinite_creators:
        users[ALICE] = 100
    return {"users": users, "users_default": 0, "events_default": 0, "state_default": 50,
            "invite": 50, "kick": 50, "ban": 50, "redact": 50,
            "events": {"m.room.name": 50, "m.room.power_levels": 50, "m.room.avatar": 100},
            "notifications": {"room": 100}}


@dataclass
class Room:
    version: str
    create: JsonDict
    state: StateMap = field(default_factory=dict)

    @property
    def room_id(self) -> str:
        if ROOM_VERSIONS[self.version].room_id_from_create:
            return "!" + compute_event_id(self.create, ROOM_VERSIONS[self.version])[1:]
        return str(self.create["room_id"])

    @property
    def create_id(self) -> str:
        return compute_event_id(self.create, ROOM_VERSIONS[self.version])

    def event(self, type_: str, sender: str, content: JsonDict, state_key: str | None = None,
              **extra: Any) -> JsonDict:
        event: JsonDict = {"type": type_, "sender": sender, "content": content, "room_id": self.room_id,
                           "prev_events": ["$prev"], "auth_events": [], "depth": 5, "origin_server_ts": 1,
                           **extra}
        if state_key is not None:
            event["state_key"] = state_key
        if ROOM_VERSIONS[self.version].event_format == "v1":
            event.setdefault("event_id", "$ev:hs")
        return event

    def member(self, target: str, membership: str, sender: str | None = None, **content: Any) -> JsonDict:
        return self.event("m.room.member", sender or target, {"membership": membership, **content}, target)

    def put(self, *events: JsonDict) -> Room:
        """A copy of the room with these events in its state."""
        state = copy.deepcopy(self.state)
        for event in events:
            state[(event["type"], event.get("state_key", ""))] = event
        return Room(self.version, self.create, state)

    def levels(self, **changes: Any) -> Room:
        """A copy with these power-levels keys set (``None`` removes one)."""
        content = copy.deepcopy(self.state[("m.room.power_levels", "")]["content"])
        for key, value in changes.items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = value
        return self.put(self.event("m.room.power_levels", ALICE, content, ""))

    def join_rule(self, rule: str) -> Room:
        return self.put(self.event("m.room.join_rules", ALICE, {"join_rule": rule}, ""))

    def allows(self, event: JsonDict) -> None:
        check_event_allowed(event, self.state)

    def refuses(self, event: JsonDict, why: str) -> None:
        with pytest.raises(AuthError, match=why):
            check_event_allowed(event, self.state)


def bare_room(version: str, **create_extra: Any) -> Room:
    """Only the create event."""
    create = create_event(version, **create_extra)
    return Room(version, create, {("m.room.create", ""): create})


def room(version: str) -> Room:
    """The room of the module docstring."""
    r = bare_room(version)
    r = r.put(r.member(ALICE, "join"), r.event("m.room.power_levels", ALICE, base_levels(version), ""),
              r.event("m.room.join_rules", ALICE, {"join_rule": "invite"}, ""))
    for user in (MOD, PEER, BOB):
        r = r.put(r.member(user, "join"))
    r = r.put(r.member(DAVE, "ban", ALICE), r.member(FRANK, "invite", ALICE))
    if ROOM_VERSIONS[version].knocking:
        r = r.put(r.member(KIM, "knock"))
    return r

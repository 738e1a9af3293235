"""Room upgrades (``POST /rooms/{roomId}/upgrade``), following the spec's server behaviour:

1. the user must be allowed to send ``m.room.tombstone`` in the old room;
2. a replacement room of the new version whose ``m.room.create`` names its
   ``predecessor`` and copies ``type`` (``additional_creators`` only when
   the request gives them);
3. transferable state is replicated (server ACL, encryption, name, avatar,
   topic, guest access, history visibility, join rules, power levels,
   canonical alias); power levels are adapted to the new version's creator
   rules (v12 creators are not listed; a v12 creator moving to an older
   version gets level 100);
4. the old room's joined local members are invited to the new room (Parley:
   so that invite-only groups keep working without aliases);
5. ``m.room.tombstone`` in the old room;
6. the old room's ``events_default`` and ``invite`` are raised to
   ``max(50, users_default + 1)`` where the user may do so;
7. a room published in the room directory is replaced there by the new room.

``predecessor.event_id`` is the old room's last event before the upgrade
(the spec: "the last known event in the old room, if known"; SyTest wants the
tombstone, which is sent after the new room exists).
"""

from __future__ import annotations

import logging
from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.event_auth import (
    as_level,
    creators,
    membership_of,
    required_event_level,
    user_power,
)
from homeserver.services.events import EventSpec
from homeserver.services.room_versions import ROOM_VERSIONS, room_version
from homeserver.services.rooms import CREATOR_LEVEL, RoomService, check_room_id, join_rules_for

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]

TRANSFERABLE = (
    "m.room.server_acl", "m.room.encryption", "m.room.name", "m.room.avatar", "m.room.topic",
    "m.room.guest_access", "m.room.history_visibility", "m.room.join_rules", "m.room.canonical_alias",
)


class RoomUpgradeService:
    def __init__(self, rooms: RoomService) -> None:
        self.rooms = rooms
        self.events = rooms.events
        self.sender = rooms.sender

    async def upgrade(self, user_id: str, room_id: str, body: JsonDict) -> str:
        check_room_id(room_id)
        new_version = body.get("new_version")
        if new_version is None:
            raise MatrixError(400, Codes.MISSING_PARAM, "new_version is required")
        rules = room_version(new_version)
        head = await self.events.room_head(room_id)
        if head is None or head.purged:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown room")
        state_events = await self.rooms.room_state_events(room_id)
        stored = {(e.type, e.state_key or ""): e for e in state_events}
        state = {k: e.pdu for k, e in stored.items()}
        if membership_of(state, user_id) != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")
        if user_power(state, user_id) < required_event_level(state, "m.room.tombstone", True):
            raise MatrixError(403, Codes.FORBIDDEN, "You may not upgrade this room")
        if ("m.room.tombstone", "") in state:
            raise MatrixError(400, Codes.INVALID_PARAM, "This room was already upgraded")

        old_create = state[("m.room.create", "")].get("content", {})
        creation: JsonDict = {"predecessor": {"room_id": room_id, "event_id": head.last_event_id}}
        for key in ("type", "m.federate"):
            if key in old_create:
                creation[key] = old_create[key]
        extra = body.get("additional_creators")
        if extra is not None:
            if not rules.infinite_creators:
                raise MatrixError(400, Codes.INVALID_PARAM, f"Room version {new_version} has no additional creators")
            if not isinstance(extra, list) or not all(isinstance(u, str) for u in extra):
                raise MatrixError(400, Codes.BAD_JSON, "additional_creators must be a list of user ids")
            creation["additional_creators"] = extra

        power = self._power_levels(state, user_id, rules.infinite_creators, extra or [])
        initial_state = []
        for event_type in TRANSFERABLE:
            event = stored.get((event_type, ""))
            if event is None or not event.content:
                continue
            content = dict(event.content)
            if event_type == "m.room.join_rules" and content.get("join_rule") not in join_rules_for(new_version):
                content = {"join_rule": "invite"}
            if event_type == "m.room.name":
                continue  # sent as "name" below
            initial_state.append({"type": event_type, "state_key": "", "content": content})
        invitees = [m.user_id for m in await self.rooms.repo.members(room_id, ("join",))
                    if m.user_id != user_id and m.user_id.endswith(":" + self.rooms.server_name)]
        request: JsonDict = {
            "room_version": new_version,
            "creation_content": creation,
            "initial_state": initial_state,
            "power_level_content_override": power,
            "invite": invitees,
            "is_direct": head.is_direct,
        }
        name = stored.get(("m.room.name", ""))
        if name is not None and isinstance(name.content.get("name"), str):
            request["name"] = name.content["name"]
        new_room = await self.rooms.create_room(user_id, request)
        await self.sender.send(room_id, [EventSpec(
            "m.room.tombstone", user_id,
            {"body": "This room has been replaced", "replacement_room": new_room}, "")])
        await self._restrict_old_room(user_id, room_id, state)
        directory = self.rooms.directory
        if directory is not None and (await directory.visibility(room_id)).get("visibility") == "public":
            # The replacement takes the old room's place in the room directory.
            await directory.publish(new_room, True)
            await directory.publish(room_id, False)
        return new_room

    @staticmethod
    def _power_levels(state: dict[tuple[str, str], JsonDict], user_id: str, infinite: bool,
                      additional: list[str]) -> JsonDict:
        old = dict(state.get(("m.room.power_levels", ""), {}).get("content") or {})
        version = ROOM_VERSIONS.get(str(state[("m.room.create", "")].get("content", {}).get("room_version", "1")))
        power: JsonDict = {}
        for key, value in old.items():
            if isinstance(value, dict):
                power[key] = {k: as_level(v, 0, version) for k, v in value.items()}
            else:
                power[key] = as_level(value, 0, version)
        users = dict(power.get("users") or {})
        if infinite:
            for creator in {user_id, *additional}:
                users.pop(creator, None)
        else:
            # The upgrading user and the old room's creators keep their level; v12's infinite one
            # becomes the highest the levels name (at least 100), so they can still do everything.
            default = as_level(power.get("users_default"), 0)
            top = max([CREATOR_LEVEL, *(v for v in power.values() if isinstance(v, int)),
                       *(v for v in (power.get("events") or {}).values() if isinstance(v, int)),
                       *(v for v in (power.get("notifications") or {}).values() if isinstance(v, int))])
            for member in creators(state) | {user_id}:
                level = min(user_power(state, member), top)
                if level > users.get(member, default):
                    users[member] = level
        power["users"] = users
        return power

    async def _restrict_old_room(self, user_id: str, room_id: str, state: dict[tuple[str, str], JsonDict]) -> None:
        old = dict(state.get(("m.room.power_levels", ""), {}).get("content") or {})
        level = max(50, as_level(old.get("users_default"), 0) + 1)
        old["events_default"] = level
        old["invite"] = level
        try:
            await self.sender.send(room_id, [EventSpec("m.room.power_levels", user_id, old, "")])
        except MatrixError as exc:
            logger.info("old room %s keeps its power levels: %s", room_id, exc.message)

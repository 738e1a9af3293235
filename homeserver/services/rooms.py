"""Rooms: creation, state, member lists, who may see what, and the room lifecycle hooks.

Implements :class:`homeserver.services.sync_api.MembershipReader`.  Membership
changes (invite, join, leave, kick, forget, destroy) live in ``membership.py``.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import has_control_characters, parse_room_id, parse_user_id
from homeserver.config import Config
from homeserver.services.clock import Clock
from homeserver.services.directory_hooks import DirectoryHooks
from homeserver.services.event_auth import validate_power_levels_content
from homeserver.services.event_format import EventFormatter
from homeserver.services.event_sender import EventSender, NewRoom, Txn, new_room_id
from homeserver.services.events import EventSpec
from homeserver.services.history_visibility import history_floor, room_visibility, world_readable_floor
from homeserver.services.room_versions import room_version
from homeserver.storage.accounts import UserRepository
from homeserver.storage.events import EventRepository, StoredEvent
from homeserver.storage.rooms import RoomRepository

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
RoomPurgedListener = Callable[[str], Awaitable[None]]
EventRedactedListener = Callable[[str, str, JsonDict], Awaitable[None]]
ProfileLookup = Callable[[str], Awaitable[tuple[str | None, str | None]]]

CREATOR_LEVEL = 100
# "Visible up to the end": larger than any stream position.
NO_UPPER_BOUND = 2**62
PRESETS = ("private_chat", "trusted_private_chat", "public_chat")
MAX_TYPE_LENGTH = 255
# Types set by createRoom itself or only through the membership endpoints.
_RESERVED_INITIAL_STATE = ("m.room.create", "m.room.member", "m.room.power_levels")


def default_power_levels(creator: str, admins: list[str]) -> JsonDict:
    """Only the creator (100) may kick, ban, redact others, rename, change the avatar or levels."""
    users = {creator: CREATOR_LEVEL}
    for admin in admins:
        users[admin] = CREATOR_LEVEL
    return {
        "users": users,
        "users_default": 0,
        "events": {
            "m.room.name": CREATOR_LEVEL,
            "m.room.avatar": CREATOR_LEVEL,
            "m.room.topic": CREATOR_LEVEL,
            "m.room.power_levels": CREATOR_LEVEL,
            "m.room.history_visibility": CREATOR_LEVEL,
            "m.room.canonical_alias": CREATOR_LEVEL,
            "m.room.encryption": CREATOR_LEVEL,
            "m.room.tombstone": CREATOR_LEVEL,
            "m.room.server_acl": CREATOR_LEVEL,
            "m.room.join_rules": CREATOR_LEVEL,
        },
        "events_default": 0,
        "state_default": CREATOR_LEVEL,
        "ban": CREATOR_LEVEL,
        "kick": CREATOR_LEVEL,
        "redact": CREATOR_LEVEL,
        "invite": 0,
        "notifications": {"room": CREATOR_LEVEL},
    }


def join_rules_for(version: str | None) -> tuple[str, ...]:
    """The join rules a room of ``version`` understands (None: any supported version)."""
    rules = room_version(version) if version is not None else None
    out = ["invite", "public"]
    if rules is None or rules.knocking:
        out.append("knock")
    if rules is None or rules.restricted:
        out.append("restricted")
    if rules is None or rules.knock_restricted:
        out.append("knock_restricted")
    return tuple(out)


def check_event_type(value: Any, what: str = "event type") -> str:
    if not isinstance(value, str) or not value or len(value) > MAX_TYPE_LENGTH or has_control_characters(value):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid {what}")
    return value


def check_state_key(value: Any) -> str:
    if not isinstance(value, str) or len(value) > MAX_TYPE_LENGTH or has_control_characters(value):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid state key")
    return value


def check_room_id(room_id: str) -> str:
    parse_room_id(room_id)
    return room_id


class RoomService:
    def __init__(self, config: Config, events: EventRepository, rooms: RoomRepository,
                 users: UserRepository, sender: EventSender, formatter: EventFormatter, clock: Clock) -> None:
        self.config = config
        self.server_name = config.server_name
        self.events = events
        self.repo = rooms
        self.users = users
        self.sender = sender
        self.formatter = formatter
        self.clock = clock
        self._purged_listeners: list[RoomPurgedListener] = []
        self._redacted_listeners: list[EventRedactedListener] = []
        self.profile_lookup: ProfileLookup | None = None
        # Aliases and the public room list (services/room_directory.py), set by the app.
        self.directory: DirectoryHooks | None = None

    # ------------------------------------------------------------ hooks
    def on_room_purged(self, callback: RoomPurgedListener) -> None:
        """``callback(room_id)`` after a room's events were deleted (DM left by all, group destroyed)."""
        self._purged_listeners.append(callback)

    def on_event_redacted(self, callback: EventRedactedListener) -> None:
        """``callback(room_id, event_id, original_content)`` after an event was redacted."""
        self._redacted_listeners.append(callback)

    def set_profile_lookup(self, lookup: ProfileLookup) -> None:
        """``lookup(user_id) -> (displayname, avatar_url)`` for new m.room.member events."""
        self.profile_lookup = lookup

    async def fire_room_purged(self, room_id: str) -> None:
        for callback in self._purged_listeners:
            try:
                await callback(room_id)
            except Exception:
                logger.exception("room purge listener failed for %s", room_id)

    async def fire_event_redacted(self, room_id: str, event_id: str, content: JsonDict) -> None:
        for callback in self._redacted_listeners:
            try:
                await callback(room_id, event_id, content)
            except Exception:
                logger.exception("redaction listener failed for %s", event_id)

    async def member_content(self, user_id: str, membership: str, extra: JsonDict | None = None) -> JsonDict:
        content: JsonDict = {"membership": membership}
        if self.profile_lookup is not None and membership in ("join", "invite"):
            displayname, avatar_url = await self.profile_lookup(user_id)
            if displayname is not None:
                content["displayname"] = displayname
            if avatar_url is not None:
                content["avatar_url"] = avatar_url
        if extra:
            content.update(extra)
        return content

    # ------------------------------------------------- MembershipReader
    async def joined_rooms(self, user_id: str) -> list[str]:
        return await self.repo.joined_room_ids(user_id)

    async def joined_users(self, room_id: str) -> list[str]:
        return await self.repo.joined_user_ids(room_id)

    async def users_sharing_a_room_in_any_state(self, user_id: str) -> set[str]:
        return await self.repo.users_sharing_a_room_in_any_state(user_id)

    async def users_sharing_a_room(self, user_id: str) -> set[str]:
        return await self.repo.users_sharing_a_room(user_id)

    # ------------------------------------------------------------ create
    async def check_local_user(self, user_id: Any) -> str:
        if not isinstance(user_id, str):
            raise MatrixError(400, Codes.INVALID_PARAM, "user_id must be a string")
        _, server = parse_user_id(user_id)
        if server != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "Federation is not supported: users must be local")
        target: str = await self.users.alias_target(user_id) or user_id  # a lookup id, registered since
        user = await self.users.get(target)
        if user is None or user.deactivated:
            raise MatrixError(404, Codes.NOT_FOUND, f"Unknown user {target}")
        return target

    async def create_room(self, user_id: str, body: JsonDict) -> str:
        preset = body.get("preset")
        visibility = body.get("visibility", "private")
        if visibility not in ("private", "public"):
            raise MatrixError(400, Codes.INVALID_PARAM, "visibility must be private or public")
        if preset is None:
            preset = "public_chat" if visibility == "public" else "private_chat"
        if preset not in PRESETS:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Unknown preset {str(preset)[:40]!r}")
        version = body.get("room_version", self.config.rooms.default_version)
        rules = room_version(version)
        is_direct = body.get("is_direct", False)
        if not isinstance(is_direct, bool):
            raise MatrixError(400, Codes.BAD_JSON, "is_direct must be a boolean")
        alias = None
        if body.get("room_alias_name") is not None and self.directory is not None:
            alias = await self.directory.alias_for_new_room(body["room_alias_name"])
        invites = body.get("invite", [])
        if not isinstance(invites, list) or len(invites) > 100:
            raise MatrixError(400, Codes.BAD_JSON, "invite must be a list of at most 100 user ids")
        invitees: list[str] = []
        for target in invites:
            checked = await self.check_local_user(target)
            if checked != user_id and checked not in invitees:
                invitees.append(checked)
        name = body.get("name")
        if name is not None:
            self.check_name(name)
        topic = body.get("topic")
        if topic is not None and not isinstance(topic, str):
            raise MatrixError(400, Codes.BAD_JSON, "topic must be a string")
        creation = body.get("creation_content", {})
        if not isinstance(creation, dict):
            raise MatrixError(400, Codes.BAD_JSON, "creation_content must be an object")
        override = body.get("power_level_content_override", {})
        if not isinstance(override, dict):
            raise MatrixError(400, Codes.BAD_JSON, "power_level_content_override must be an object")
        initial_state = self._initial_state(body.get("initial_state", []), version)

        admins = invitees if preset == "trusted_private_chat" else []
        power = default_power_levels(user_id, admins)
        if rules.infinite_creators:
            # v12 (createRoom in the spec): m.room.tombstone needs more than state_default, so
            # that only creators can upgrade unless the room says otherwise.
            power["events"]["m.room.tombstone"] = power["state_default"] + 50
            if admins:
                # trusted_private_chat: the invitees become additional creators (spec, createRoom).
                extra = creation.get("additional_creators")
                named = [u for u in extra if isinstance(u, str)] if isinstance(extra, list) else []
                creation = {**creation, "additional_creators": list(dict.fromkeys([*named, *admins]))}
        power.update(override)
        if rules.infinite_creators:
            # v12: creators have infinite power and may not appear in the power levels.
            extra = creation.get("additional_creators")
            users = dict(power.get("users") or {})
            for creator in [user_id, *(extra if isinstance(extra, list) else [])]:
                users.pop(creator, None)
            power["users"] = users
        validate_power_levels_content(power)

        specs = [
            EventSpec("m.room.create", user_id, {**creation, "room_version": version}, ""),
            EventSpec("m.room.member", user_id, await self.member_content(user_id, "join"), user_id),
            EventSpec("m.room.power_levels", user_id, power, ""),
            EventSpec("m.room.join_rules", user_id,
                      {"join_rule": "public" if preset == "public_chat" else "invite"}, ""),
            EventSpec("m.room.history_visibility", user_id, {"history_visibility": "shared"}, ""),
            # The spec's presets: guests may join private chats (once invited), not public ones.
            EventSpec("m.room.guest_access", user_id,
                      {"guest_access": "forbidden" if preset == "public_chat" else "can_join"}, ""),
        ]
        # initial_state overrides what the preset sets (one event per key, not two).
        overridden = {(t, k) for t, k, _ in initial_state}
        specs = [s for s in specs if s.type == "m.room.create" or (s.type, s.state_key) not in overridden]
        specs += [EventSpec(t, user_id, c, k) for t, k, c in initial_state]
        if name is not None:
            specs.append(EventSpec("m.room.name", user_id, {"name": name}, ""))
        if topic is not None:
            specs.append(EventSpec("m.room.topic", user_id, {"topic": topic}, ""))
        if alias is not None:
            specs.append(EventSpec("m.room.canonical_alias", user_id, {"alias": alias}, ""))
        for target in invitees:
            extra = {"is_direct": True} if is_direct else None
            specs.append(EventSpec("m.room.member", user_id, await self.member_content(target, "invite", extra),
                                   target))
        if is_direct:
            # Direct chats add both users: the invitee joins at once.
            for target in invitees:
                specs.append(EventSpec("m.room.member", target, await self.member_content(target, "join"), target))
        provisional = new_room_id(self.server_name)
        # In versions whose room id is the create event's hash, the id is known
        # only once the room exists; elsewhere the alias is taken first so that
        # a taken alias creates no room.
        alias_first = alias is not None and self.directory is not None and not rules.room_id_from_create
        if alias_first:
            assert alias is not None and self.directory is not None
            await self.directory.add_for_new_room(alias, provisional, user_id)
        stored = await self.sender.send(provisional, specs, new_room=NewRoom(user_id, is_direct, version))
        room_id = stored[0].room_id
        if alias is not None and self.directory is not None and not alias_first:
            await self.directory.add_for_new_room(alias, room_id, user_id)
        if visibility == "public" and self.directory is not None:
            await self.directory.publish(room_id, True)
        return room_id

    def _initial_state(self, value: Any, version: str) -> list[tuple[str, str, JsonDict]]:
        if not isinstance(value, list) or len(value) > 50:
            raise MatrixError(400, Codes.BAD_JSON, "initial_state must be a list of at most 50 events")
        out = []
        for item in value:
            if not isinstance(item, dict):
                raise MatrixError(400, Codes.BAD_JSON, "initial_state entries must be objects")
            event_type = check_event_type(item.get("type"))
            state_key = check_state_key(item.get("state_key", ""))
            content = item.get("content")
            if not isinstance(content, dict):
                raise MatrixError(400, Codes.BAD_JSON, "initial_state content must be an object")
            if event_type in _RESERVED_INITIAL_STATE:
                raise MatrixError(400, Codes.INVALID_PARAM, f"{event_type} cannot be set in initial_state")
            self.check_state_content(event_type, content, version)
            out.append((event_type, state_key, content))
        return out

    def check_name(self, name: Any) -> None:
        limit = self.config.limits.max_room_name_length
        if not isinstance(name, str) or len(name) > limit:
            raise MatrixError(400, Codes.INVALID_PARAM, f"Room names are strings of at most {limit} characters")

    def check_state_content(self, event_type: str, content: JsonDict, version: str | None = None) -> None:
        if event_type == "m.room.name":
            self.check_name(content.get("name", ""))
        elif event_type == "m.room.power_levels":
            validate_power_levels_content(content)
        elif event_type == "m.room.join_rules" and content.get("join_rule") not in join_rules_for(version):
            raise MatrixError(400, Codes.INVALID_PARAM,
                              "join_rule must be one of " + ", ".join(join_rules_for(version)))
        elif event_type == "m.room.history_visibility" and content.get("history_visibility") not in (
            "invited", "joined", "shared", "world_readable"
        ):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid history_visibility")

    # ------------------------------------------------------------ access
    async def visible_range(self, user_id: str, room_id: str) -> tuple[int, int]:
        """Stream positions (lower exclusive, upper inclusive) of the room the user may read."""
        membership = await self.repo.membership(room_id, user_id)
        if membership is None or membership.forgotten or membership.membership in ("invite", "knock"):
            if await self.events.room_head(room_id) is not None:
                floor = await world_readable_floor(self.events, room_id)
                if floor is not None:
                    return floor, NO_UPPER_BOUND  # readable by anyone, members or not
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of this room")
        head = await self.events.room_head(room_id)
        if head is None:
            raise MatrixError(403, Codes.FORBIDDEN, "You are not a member of this room")
        upper = NO_UPPER_BOUND if membership.membership == "join" else membership.stream_pos
        lower = await history_floor(self.events, membership, await room_visibility(self.events, room_id))
        return lower, upper

    async def require_joined(self, user_id: str, room_id: str) -> None:
        membership = await self.repo.membership(room_id, user_id)
        if membership is None or membership.membership != "join":
            raise MatrixError(403, Codes.FORBIDDEN, "You are not in this room")

    # ------------------------------------------------------------ state
    async def get_state(self, user_id: str, room_id: str) -> list[JsonDict]:
        lower, upper = await self.visible_range(user_id, room_id)
        del lower
        if upper == NO_UPPER_BOUND:
            events = (await self.events.current_state([room_id]))[room_id]
        else:
            events = await self.events.state_at(room_id, upper)
        return await self.formatter.format(events)

    async def get_state_event(self, user_id: str, room_id: str, event_type: str, state_key: str) -> JsonDict:
        return (await self._visible_state_event(user_id, room_id, event_type, state_key)).content

    async def get_state_event_formatted(self, user_id: str, room_id: str, event_type: str,
                                        state_key: str) -> JsonDict:
        """The whole event, as clients see events (``?format=event``)."""
        event = await self._visible_state_event(user_id, room_id, event_type, state_key)
        return (await self.formatter.format([event]))[0]

    async def _visible_state_event(self, user_id: str, room_id: str, event_type: str,
                                   state_key: str) -> StoredEvent:
        lower, upper = await self.visible_range(user_id, room_id)
        del lower
        if upper == NO_UPPER_BOUND:
            event = await self.events.state_event(room_id, event_type, state_key)
        else:
            event = next((e for e in await self.events.state_at(room_id, upper)
                          if e.type == event_type and e.state_key == state_key), None)
        if event is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Event not found")
        return event

    async def put_state(self, user_id: str, device_id: str, room_id: str, event_type: str, state_key: str,
                        content: JsonDict) -> str:
        check_event_type(event_type)
        check_state_key(state_key)
        if event_type == "m.room.member":
            if state_key != user_id or content.get("membership") != "join":
                raise MatrixError(400, Codes.INVALID_PARAM,
                                  "Use /invite, /join, /leave and /kick to change memberships")
            await self.require_joined(user_id, room_id)
        if event_type == "m.room.create":
            raise MatrixError(403, Codes.FORBIDDEN, "m.room.create cannot be changed")
        head = await self.events.room_head(room_id)
        self.check_state_content(event_type, content, head.room_version if head else None)
        if event_type == "m.room.canonical_alias" and self.directory is not None:
            await self.directory.check_canonical_alias(room_id, content)
        current = await self.events.state_event(room_id, event_type, state_key)
        if current is not None and current.sender == user_id and current.content == content:
            return current.event_id  # an unchanged state event is not sent again
        del device_id
        stored = await self.sender.send(room_id, [EventSpec(event_type, user_id, content, state_key)])
        return stored[-1].event_id

    async def members(self, user_id: str, room_id: str, membership: str | None,
                      not_membership: str | None) -> list[JsonDict]:
        lower, upper = await self.visible_range(user_id, room_id)
        del lower
        if upper == NO_UPPER_BOUND:
            events = (await self.events.current_state([room_id], types=["m.room.member"]))[room_id]
        else:
            events = [e for e in await self.events.state_at(room_id, upper) if e.type == "m.room.member"]
        if membership is not None:
            events = [e for e in events if e.membership == membership]
        if not_membership is not None:
            events = [e for e in events if e.membership != not_membership]
        return await self.formatter.format(events)

    async def joined_members(self, user_id: str, room_id: str) -> JsonDict:
        await self.require_joined(user_id, room_id)
        events = (await self.events.current_state([room_id], types=["m.room.member"]))[room_id]
        joined: JsonDict = {}
        for event in events:
            if event.membership == "join" and event.state_key:
                joined[event.state_key] = {
                    "display_name": event.content.get("displayname"),
                    "avatar_url": event.content.get("avatar_url"),
                }
        return joined

    async def room_state_events(self, room_id: str) -> list[StoredEvent]:
        return (await self.events.current_state([room_id]))[room_id]

    # ------------------------------------------------------------ profiles
    async def update_profile_in_rooms(self, user_id: str, displayname: str | None,
                                      avatar_url: str | None) -> None:
        """Send a fresh m.room.member join with the new profile into every joined room."""
        content: JsonDict = {"membership": "join"}
        if displayname is not None:
            content["displayname"] = displayname
        if avatar_url is not None:
            content["avatar_url"] = avatar_url
        for room_id in await self.repo.joined_room_ids(user_id):
            try:
                await self.sender.send(room_id, [EventSpec("m.room.member", user_id, dict(content), user_id)])
            except MatrixError as exc:
                logger.info("profile update not sent to %s: %s", room_id, exc.message)


__all__ = ["RoomService", "Txn", "check_room_id", "check_event_type", "check_state_key", "NO_UPPER_BOUND"]

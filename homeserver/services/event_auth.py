"""Authorisation rules of room versions 1-12 (pure, no I/O).

``check_event_allowed(event, state)`` applies the specification's auth rules
to a PDU given the room state it is authorised against (a mapping of
``(type, state_key)`` to PDUs), in the specification's order.  The room
version comes from the ``m.room.create`` event in that state; what differs
between versions is read from its :class:`RoomVersion` row.  Membership
rules live in ``event_auth_members.py``.

Not supported (refused, never half-applied): third-party invites.
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.events import compute_event_id, redacts_of
from homeserver.services.room_versions import INFINITE_POWER, ROOM_VERSIONS, RoomVersion, version_of_create

JsonDict = dict[str, Any]
StateMap = dict[tuple[str, str], JsonDict]

CREATE = ("m.room.create", "")
POWER_LEVELS = ("m.room.power_levels", "")
JOIN_RULES = ("m.room.join_rules", "")

MEMBERSHIPS = ("join", "invite", "leave", "ban", "knock")


class AuthError(MatrixError):
    def __init__(self, message: str) -> None:
        super().__init__(403, Codes.FORBIDDEN, message)


def server_of(identifier: str) -> str:
    return identifier.partition(":")[2]


def member_key(user_id: str) -> tuple[str, str]:
    return ("m.room.member", user_id)


def is_user_id(value: Any) -> bool:
    return isinstance(value, str) and value.startswith("@") and ":" in value and len(value) <= 255


def auth_types_for_event(event_type: str, sender: str, state_key: str | None, content: JsonDict,
                         version: RoomVersion | None = None) -> list[tuple[str, str]]:
    """The state keys whose events go into ``auth_events`` (spec: "Auth events selection")."""
    if event_type == "m.room.create":
        return []
    rules = version or ROOM_VERSIONS["11"]
    keys = [POWER_LEVELS, member_key(sender)]
    if not rules.room_id_from_create:
        keys.insert(0, CREATE)
    if event_type == "m.room.member" and state_key is not None:
        keys.append(member_key(state_key))
        membership = content.get("membership")
        if membership in ("join", "invite", "knock"):
            keys.append(JOIN_RULES)
        tpi = content.get("third_party_invite")
        token = tpi.get("signed", {}).get("token") if isinstance(tpi, dict) and isinstance(tpi.get("signed"), dict) else None
        if membership == "invite" and isinstance(token, str):
            keys.append(("m.room.third_party_invite", token))
        via = content.get("join_authorised_via_users_server")
        if membership == "join" and rules.restricted and is_user_id(via):
            keys.append(member_key(str(via)))
    out: list[tuple[str, str]] = []
    for key in keys:
        if key not in out:
            out.append(key)
    return out


def version_of_state(state: StateMap) -> RoomVersion:
    create = state.get(CREATE)
    if create is None:
        raise AuthError("The room has no m.room.create event")
    content = create.get("content")
    version = version_of_create(content if isinstance(content, dict) else {})
    if version is None:
        raise AuthError("Unsupported room version")
    return version


def creators(state: StateMap) -> set[str]:
    """Room creators: the create event's sender (v11+), ``content.creator`` before,
    plus ``additional_creators`` in v12."""
    create = state.get(CREATE)
    if create is None:
        return set()
    version = version_of_state(state)
    content = create.get("content") or {}
    if version.creator_is_sender:
        out = {str(create.get("sender"))}
    else:
        out = {str(content.get("creator", create.get("sender")))}
    if version.infinite_creators:
        extra = content.get("additional_creators")
        if isinstance(extra, list):
            out.update(u for u in extra if isinstance(u, str))
    return out


def membership_of(state: StateMap, user_id: str) -> str:
    event = state.get(member_key(user_id))
    if event is None:
        return "leave"
    membership = event.get("content", {}).get("membership")
    return membership if isinstance(membership, str) else "leave"


def as_level(value: Any, default: int, version: RoomVersion | None = None) -> int:
    """A power level value: integers; before v10 also strings holding an integer."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and (version is None or not version.integer_power_levels):
        try:
            return int(value.strip())
        except ValueError:
            return default
    return default


def power_levels_content(state: StateMap) -> JsonDict | None:
    event = state.get(POWER_LEVELS)
    return event.get("content", {}) if event is not None else None


def _version_or_none(state: StateMap) -> RoomVersion | None:
    try:
        return version_of_state(state)
    except AuthError:
        return None


def user_power(state: StateMap, user_id: str) -> int:
    version = _version_or_none(state)
    if version is not None and version.infinite_creators and user_id in creators(state):
        return INFINITE_POWER
    content = power_levels_content(state)
    if content is None:
        return 100 if user_id in creators(state) else 0
    users = content.get("users")
    if isinstance(users, dict) and user_id in users:
        return as_level(users[user_id], 0, version)
    return as_level(content.get("users_default"), 0, version)


def level_for(state: StateMap, name: str) -> int:
    """A named action level: invite, kick, ban, redact (spec defaults)."""
    content = power_levels_content(state)
    defaults = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}
    if content is None:
        return defaults[name]
    return as_level(content.get(name), defaults[name], _version_or_none(state))


def required_event_level(state: StateMap, event_type: str, is_state: bool) -> int:
    content = power_levels_content(state)
    if content is None:
        return 0
    version = _version_or_none(state)
    events = content.get("events")
    if isinstance(events, dict) and event_type in events:
        return as_level(events[event_type], 0, version)
    if is_state:
        return as_level(content.get("state_default"), 50, version)
    return as_level(content.get("events_default"), 0, version)


def _check_create(event: JsonDict, content: JsonDict) -> None:
    if event.get("prev_events"):
        raise AuthError("m.room.create must be the first event")
    version = version_of_create(content)
    if version is None:
        raise AuthError("Unsupported room version")
    sender = str(event.get("sender"))
    if version.room_id_from_create:
        if "room_id" in event:
            raise AuthError("A version-12 m.room.create has no room_id")
        extra = content.get("additional_creators")
        if extra is not None and not (isinstance(extra, list) and all(is_user_id(u) for u in extra)):
            raise AuthError("additional_creators must be a list of user ids")
        return
    if server_of(str(event.get("room_id"))) != server_of(sender):
        raise AuthError("Room id and creator are on different servers")
    if not version.creator_is_sender and not isinstance(content.get("creator"), str):
        raise AuthError("m.room.create needs a creator in this room version")


def check_event_allowed(event: JsonDict, state: StateMap) -> None:
    """Raise :class:`AuthError` unless ``event`` passes the auth rules against ``state``."""
    from homeserver.services.event_auth_members import check_membership  # noqa: PLC0415 (it imports this module)

    event_type = event.get("type")
    sender = event.get("sender")
    if not isinstance(event_type, str) or not isinstance(sender, str):
        raise AuthError("Malformed event")
    content = event.get("content")
    if not isinstance(content, dict):
        raise AuthError("Event content must be an object")
    if event_type == "m.room.create":
        _check_create(event, content)
        return
    room_id = event.get("room_id")
    if not isinstance(room_id, str):
        raise AuthError("Malformed event")

    create = state.get(CREATE)
    if create is None:
        raise AuthError("The room has no m.room.create event")
    version = version_of_state(state)
    if version.room_id_from_create and room_id != "!" + compute_event_id(create, version)[1:]:
        raise AuthError("The room id is not the id of its m.room.create event")
    if create.get("content", {}).get("m.federate") is False and server_of(sender) != server_of(
        str(create.get("sender"))
    ):
        raise AuthError("The room is not federated")

    if event_type == "m.room.aliases" and version.special_aliases:
        state_key = event.get("state_key")
        if not isinstance(state_key, str):
            raise AuthError("m.room.aliases needs a state key")
        if state_key != server_of(sender):
            raise AuthError("m.room.aliases may only be set for the sender's own server")
        return

    if event_type == "m.room.member":
        check_membership(event, content, state, version)
        return

    if membership_of(state, sender) != "join":
        raise AuthError(f"{sender} is not in the room")

    if event_type == "m.room.third_party_invite":
        if user_power(state, sender) < level_for(state, "invite"):
            raise AuthError("You don't have permission to invite users")
        return

    state_key = event.get("state_key")
    is_state = state_key is not None
    level = user_power(state, sender)
    if level < required_event_level(state, event_type, is_state):
        raise AuthError(f"You don't have permission to send {event_type}")
    if isinstance(state_key, str) and state_key.startswith("@") and state_key != sender:
        raise AuthError("You can only set state keyed by your own user id")

    if event_type == "m.room.power_levels":
        _check_power_levels(content, state, sender, level, version)
    if event_type == "m.room.redaction" and version.redaction_auth_rule:
        if level >= level_for(state, "redact"):
            return
        redacts = redacts_of(event) or ""
        if server_of(str(event.get("event_id", ""))) == server_of(redacts):
            return
        raise AuthError("You may only redact your own server's events")
    # v3+: m.room.redaction is checked by the server that knows the redacted
    # event (services/messages.py, "Handling redactions").


_LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")


def validate_power_levels_content(content: JsonDict) -> None:
    """Shape checks (v10+: integers only).  Parley sends integers in every version."""
    for key in _LEVEL_KEYS:
        if key in content and (isinstance(content[key], bool) or not isinstance(content[key], int)):
            raise MatrixError(400, Codes.BAD_JSON, f"power level {key} must be an integer")
    for key in ("users", "events", "notifications"):
        if key in content and not isinstance(content[key], dict):
            raise MatrixError(400, Codes.BAD_JSON, f"power levels {key} must be an object")
        for name, value in (content.get(key) or {}).items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise MatrixError(400, Codes.BAD_JSON, f"power levels {key}.{name} must be an integer")
            if key == "users" and not is_user_id(name):
                raise MatrixError(400, Codes.BAD_JSON, f"power levels user {name!r} is not a user id")


def _check_power_levels(content: JsonDict, state: StateMap, sender: str, sender_level: int,
                        version: RoomVersion) -> None:
    if version.integer_power_levels:
        try:
            validate_power_levels_content(content)
        except MatrixError as exc:
            raise AuthError(exc.message) from None
    else:
        users = content.get("users")
        if users is not None and (not isinstance(users, dict) or not all(is_user_id(u) for u in users)):
            raise AuthError("power levels users must map user ids to levels")
    if version.infinite_creators:
        users = content.get("users") or {}
        if any(creator in users for creator in creators(state)):
            raise AuthError("Room creators cannot be given a power level")
    old = power_levels_content(state)
    if old is None:
        return

    def lvl(value: Any) -> int | None:
        return None if value is None else as_level(value, 0, version)

    for key in _LEVEL_KEYS:
        _check_change(lvl(old.get(key)), lvl(content.get(key)), sender_level, key)
    maps = ("events", "notifications") if version.notifications_levels else ("events",)
    for key in maps:
        old_map = old.get(key) or {}
        new_map = content.get(key) or {}
        for name in set(old_map) | set(new_map):
            _check_change(lvl(old_map.get(name)), lvl(new_map.get(name)), sender_level, f"{key}.{name}")
    old_users = old.get("users") or {}
    new_users = content.get("users") or {}
    for user in set(old_users) | set(new_users):
        before, after = lvl(old_users.get(user)), lvl(new_users.get(user))
        if before == after:
            continue
        if user != sender and before is not None and before >= sender_level:
            raise AuthError("You cannot change the power level of a user at or above your own level")
        _check_change(before, after, sender_level, f"users.{user}")


def _check_change(before: int | None, after: int | None, sender_level: int, what: str) -> None:
    if before == after:
        return
    if before is not None and before > sender_level:
        raise AuthError(f"You cannot change {what}: it is above your own level")
    if after is not None and after > sender_level:
        raise AuthError(f"You cannot raise {what} above your own level")

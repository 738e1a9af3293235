"""Authorisation rules for room-version-11 events (pure, no I/O).

``check_event_allowed(event, state)`` applies the specification's auth rules
to a PDU given the room state it is authorised against (a mapping of
``(type, state_key)`` to PDUs).  Rules that only matter across servers
(third-party invites, restricted joins via another server, knocking) are
refused rather than half-implemented.
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError

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


def auth_types_for_event(event_type: str, sender: str, state_key: str | None,
                         content: JsonDict) -> list[tuple[str, str]]:
    """The state keys whose events go into ``auth_events`` (spec: "Auth events selection")."""
    if event_type == "m.room.create":
        return []
    keys = [CREATE, POWER_LEVELS, member_key(sender)]
    if event_type == "m.room.member" and state_key is not None:
        keys.append(member_key(state_key))
        if content.get("membership") in ("join", "invite", "knock"):
            keys.append(JOIN_RULES)
    out: list[tuple[str, str]] = []
    for key in keys:
        if key not in out:
            out.append(key)
    return out


def membership_of(state: StateMap, user_id: str) -> str:
    event = state.get(member_key(user_id))
    if event is None:
        return "leave"
    membership = event.get("content", {}).get("membership")
    return membership if isinstance(membership, str) else "leave"


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    return default


def power_levels_content(state: StateMap) -> JsonDict | None:
    event = state.get(POWER_LEVELS)
    return event.get("content", {}) if event is not None else None


def user_power(state: StateMap, user_id: str) -> int:
    content = power_levels_content(state)
    if content is None:
        create = state.get(CREATE)
        return 100 if create is not None and create.get("sender") == user_id else 0
    users = content.get("users")
    if isinstance(users, dict) and user_id in users:
        return _int(users[user_id], 0)
    return _int(content.get("users_default"), 0)


def level_for(state: StateMap, name: str) -> int:
    """A named action level: invite, kick, ban, redact (spec defaults)."""
    content = power_levels_content(state)
    defaults = {"invite": 0, "kick": 50, "ban": 50, "redact": 50}
    if content is None:
        return defaults[name]
    return _int(content.get(name), defaults[name])


def required_event_level(state: StateMap, event_type: str, is_state: bool) -> int:
    content = power_levels_content(state)
    if content is None:
        return 0
    events = content.get("events")
    if isinstance(events, dict) and event_type in events:
        return _int(events[event_type], 0)
    if is_state:
        return _int(content.get("state_default"), 50)
    return _int(content.get("events_default"), 0)


def check_event_allowed(event: JsonDict, state: StateMap) -> None:
    """Raise :class:`AuthError` unless ``event`` passes the auth rules against ``state``."""
    event_type = event.get("type")
    sender = event.get("sender")
    room_id = event.get("room_id")
    if not isinstance(event_type, str) or not isinstance(sender, str) or not isinstance(room_id, str):
        raise AuthError("Malformed event")
    content = event.get("content")
    if not isinstance(content, dict):
        raise AuthError("Event content must be an object")

    if event_type == "m.room.create":
        if event.get("prev_events"):
            raise AuthError("m.room.create must be the first event")
        if server_of(room_id) != server_of(sender):
            raise AuthError("Room id and creator are on different servers")
        version = content.get("room_version", "1")
        if version != "11":
            raise AuthError("Unsupported room version")
        return

    create = state.get(CREATE)
    if create is None:
        raise AuthError("The room has no m.room.create event")
    if create.get("content", {}).get("m.federate") is False and server_of(sender) != server_of(
        str(create.get("sender"))
    ):
        raise AuthError("The room is not federated")

    if event_type == "m.room.member":
        _check_membership(event, content, state, create)
        return

    if membership_of(state, sender) != "join":
        raise AuthError(f"{sender} is not in the room")

    state_key = event.get("state_key")
    is_state = state_key is not None
    level = user_power(state, sender)
    if level < required_event_level(state, event_type, is_state):
        raise AuthError(f"You don't have permission to send {event_type}")
    if isinstance(state_key, str) and state_key.startswith("@") and state_key != sender:
        raise AuthError("You can only set state keyed by your own user id")

    if event_type == "m.room.power_levels":
        _check_power_levels(content, state, sender, level)
    # m.room.redaction: v11 leaves the permission check to the server that
    # knows the redacted event (services/messages.py).


def _check_membership(event: JsonDict, content: JsonDict, state: StateMap, create: JsonDict) -> None:
    sender = str(event["sender"])
    target = event.get("state_key")
    membership = content.get("membership")
    if not isinstance(target, str) or membership not in MEMBERSHIPS:
        raise AuthError("Invalid membership event")
    if "join_authorised_via_users_server" in content:
        raise AuthError("Restricted joins are not supported")
    if "third_party_invite" in content:
        raise AuthError("Third-party invites are not supported")

    if membership == "join":
        prev = event.get("prev_events") or []
        if (
            len(prev) == 1
            and state.get(CREATE) is not None
            and len(state) == 1
            and target == create.get("sender")
            and target == sender
        ):
            return  # the creator's first join
        if sender != target:
            raise AuthError("You can only join for yourself")
        current = membership_of(state, target)
        if current == "ban":
            raise AuthError("You are banned from this room")
        join_rule = state.get(JOIN_RULES, {}).get("content", {}).get("join_rule", "invite")
        if join_rule == "public":
            return
        if join_rule in ("invite", "knock") and current in ("invite", "join"):
            return
        raise AuthError("You are not invited to this room")

    sender_membership = membership_of(state, sender)
    target_membership = membership_of(state, target)

    if membership == "invite":
        if sender_membership != "join":
            raise AuthError(f"{sender} is not in the room")
        if target_membership in ("ban", "join"):
            raise AuthError(f"{target} is {'banned from' if target_membership == 'ban' else 'already in'} the room")
        if user_power(state, sender) < level_for(state, "invite"):
            raise AuthError("You don't have permission to invite users")
        return

    if membership == "leave":
        if sender == target:
            if target_membership in ("join", "invite", "knock"):
                return
            raise AuthError(f"{target} is not in the room")
        if sender_membership != "join":
            raise AuthError(f"{sender} is not in the room")
        sender_level = user_power(state, sender)
        target_level = user_power(state, target)
        if target_membership == "ban" and sender_level < level_for(state, "ban"):
            raise AuthError("You don't have permission to unban users")
        if sender_level >= level_for(state, "kick") and target_level < sender_level:
            return
        raise AuthError("You don't have permission to kick this user")

    if membership == "ban":
        if sender_membership != "join":
            raise AuthError(f"{sender} is not in the room")
        sender_level = user_power(state, sender)
        if sender_level >= level_for(state, "ban") and user_power(state, target) < sender_level:
            return
        raise AuthError("You don't have permission to ban this user")

    raise AuthError("Knocking is not supported")


_LEVEL_KEYS = ("users_default", "events_default", "state_default", "ban", "redact", "kick", "invite")


def validate_power_levels_content(content: JsonDict) -> None:
    """Shape checks (v10+: integers only)."""
    for key in _LEVEL_KEYS:
        if key in content and (isinstance(content[key], bool) or not isinstance(content[key], int)):
            raise MatrixError(400, Codes.BAD_JSON, f"power level {key} must be an integer")
    for key in ("users", "events", "notifications"):
        if key in content and not isinstance(content[key], dict):
            raise MatrixError(400, Codes.BAD_JSON, f"power levels {key} must be an object")
        for name, value in (content.get(key) or {}).items():
            if isinstance(value, bool) or not isinstance(value, int):
                raise MatrixError(400, Codes.BAD_JSON, f"power levels {key}.{name} must be an integer")
            if key == "users" and not (isinstance(name, str) and name.startswith("@") and ":" in name):
                raise MatrixError(400, Codes.BAD_JSON, f"power levels user {name!r} is not a user id")


def _check_power_levels(content: JsonDict, state: StateMap, sender: str, sender_level: int) -> None:
    try:
        validate_power_levels_content(content)
    except MatrixError as exc:
        raise AuthError(exc.message) from None
    old = power_levels_content(state)
    if old is None:
        return
    for key in _LEVEL_KEYS:
        _check_change(old.get(key), content.get(key), sender_level, key)
    for key in ("events", "notifications"):
        old_map = old.get(key) or {}
        new_map = content.get(key) or {}
        for name in set(old_map) | set(new_map):
            _check_change(old_map.get(name), new_map.get(name), sender_level, f"{key}.{name}")
    old_users = old.get("users") or {}
    new_users = content.get("users") or {}
    for user in set(old_users) | set(new_users):
        before, after = old_users.get(user), new_users.get(user)
        if before == after:
            continue
        if user != sender and before is not None and _int(before, 0) >= sender_level:
            raise AuthError("You cannot change the power level of a user at or above your own level")
        _check_change(before, after, sender_level, f"users.{user}")


def _check_change(before: Any, after: Any, sender_level: int, what: str) -> None:
    if before == after:
        return
    if before is not None and _int(before, 0) > sender_level:
        raise AuthError(f"You cannot change {what}: it is above your own level")
    if after is not None and _int(after, 0) > sender_level:
        raise AuthError(f"You cannot raise {what} above your own level")

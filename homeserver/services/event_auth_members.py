"""The ``m.room.member`` authorisation rules of room versions 1-12 (rule 5 of the spec's list).

Knocking exists from v7, restricted joins (``join_authorised_via_users_server``)
from v8, ``knock_restricted`` from v10.  The signature of the authorising
server on a restricted join is checked where signatures are checked (the
incoming-event path); here only the authorising user's standing counts.
"""

from __future__ import annotations

from typing import Any

from homeserver.services.event_auth import (
    CREATE,
    JOIN_RULES,
    AuthError,
    StateMap,
    creators,
    level_for,
    membership_of,
    user_power,
)
from homeserver.services.event_auth_tpi import check_third_party_invite
from homeserver.services.events import compute_event_id, reference_ids
from homeserver.services.room_versions import RoomVersion

JsonDict = dict[str, Any]


def _memberships(version: RoomVersion) -> tuple[str, ...]:
    return ("join", "invite", "leave", "ban", "knock") if version.knocking else ("join", "invite", "leave", "ban")


def join_rule_of(state: StateMap) -> str:
    rule = state.get(JOIN_RULES, {}).get("content", {}).get("join_rule", "invite")
    return rule if isinstance(rule, str) else "invite"


def _is_creators_first_join(event: JsonDict, state: StateMap, version: RoomVersion, target: str) -> bool:
    prev = reference_ids(event.get("prev_events"))
    create = state.get(CREATE)
    if len(prev) != 1 or create is None or target not in creators(state) - _additional(state, version):
        return False
    return prev[0] == compute_event_id(create, version)


def _additional(state: StateMap, version: RoomVersion) -> set[str]:
    if not version.infinite_creators:
        return set()
    extra = state.get(CREATE, {}).get("content", {}).get("additional_creators")
    return {u for u in extra if isinstance(u, str)} if isinstance(extra, list) else set()


def check_membership(event: JsonDict, content: JsonDict, state: StateMap, version: RoomVersion) -> None:
    sender = str(event["sender"])
    target = event.get("state_key")
    membership = content.get("membership")
    if not isinstance(target, str) or membership not in _memberships(version):
        raise AuthError("Invalid membership event")
    join_rule = join_rule_of(state)

    if membership == "join":
        if _is_creators_first_join(event, state, version, target) and sender == target:
            return
        if sender != target:
            raise AuthError("You can only join for yourself")
        current = membership_of(state, target)
        if current == "ban":
            raise AuthError("You are banned from this room")
        if join_rule == "invite" or (join_rule == "knock" and version.knocking):
            if current in ("invite", "join"):
                return
            raise AuthError("You are not invited to this room")
        if (join_rule == "restricted" and version.restricted) or (
            join_rule == "knock_restricted" and version.knock_restricted
        ):
            if current in ("invite", "join"):
                return
            via = content.get("join_authorised_via_users_server")
            if (
                not isinstance(via, str)
                or membership_of(state, via) != "join"
                or user_power(state, via) < level_for(state, "invite")
            ):
                raise AuthError("This room is restricted: the join must be authorised by a member who may invite")
            return
        if join_rule == "public":
            return
        raise AuthError("You are not invited to this room")

    sender_membership = membership_of(state, sender)
    target_membership = membership_of(state, target)

    if membership == "invite":
        if "third_party_invite" in content:
            check_third_party_invite(event, content["third_party_invite"], state, target, target_membership)
            return
        if sender_membership != "join":
            raise AuthError(f"{sender} is not in the room")
        if target_membership in ("ban", "join"):
            raise AuthError(f"{target} is {'banned from' if target_membership == 'ban' else 'already in'} the room")
        if user_power(state, sender) < level_for(state, "invite"):
            raise AuthError("You don't have permission to invite users")
        return

    if membership == "leave":
        if sender == target:
            allowed = ("join", "invite", "knock") if version.knocking else ("join", "invite")
            if target_membership in allowed:
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

    # knock (v7+)
    if join_rule not in ("knock", "knock_restricted") or (
        join_rule == "knock_restricted" and not version.knock_restricted
    ):
        raise AuthError("This room does not accept knocks")
    if sender != target:
        raise AuthError("You can only knock for yourself")
    if target_membership in ("ban", "invite", "join"):
        raise AuthError(f"{target} cannot knock: already {target_membership}")

"""The spec's predefined push rules (client-server API, "Predefined Rules").

Built per user because some rules name the user (their id, their localpart).
Order matters: within a kind, rules are listed in evaluation order.
"""

from __future__ import annotations

from typing import Any

JsonDict = dict[str, Any]

KINDS = ("override", "content", "room", "sender", "underride")

NOTIFY = "notify"
SOUND_DEFAULT: JsonDict = {"set_tweak": "sound", "value": "default"}
HIGHLIGHT: JsonDict = {"set_tweak": "highlight"}


def _match(key: str, pattern: str) -> JsonDict:
    return {"kind": "event_match", "key": key, "pattern": pattern}


def _rule(rule_id: str, conditions: list[JsonDict], actions: list[Any], enabled: bool = True) -> JsonDict:
    return {
        "rule_id": rule_id, "default": True, "enabled": enabled,
        "conditions": conditions, "actions": actions,
    }


def override_rules(user_id: str) -> tuple[list[JsonDict], list[JsonDict]]:
    """(rules before the user's own override rules, rules after them)."""
    first = [_rule(".m.rule.master", [], [], enabled=False)]
    rest = [
        _rule(".m.rule.suppress_notices", [_match("content.msgtype", "m.notice")], []),
        _rule(
            ".m.rule.invite_for_me",
            [_match("type", "m.room.member"), _match("content.membership", "invite"),
             _match("state_key", user_id)],
            [NOTIFY, SOUND_DEFAULT],
        ),
        _rule(".m.rule.member_event", [_match("type", "m.room.member")], []),
        _rule(
            ".m.rule.is_user_mention",
            [{"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids", "value": user_id}],
            [NOTIFY, SOUND_DEFAULT, HIGHLIGHT],
        ),
        _rule(".m.rule.contains_display_name", [{"kind": "contains_display_name"}],
              [NOTIFY, SOUND_DEFAULT, HIGHLIGHT]),
        _rule(
            ".m.rule.is_room_mention",
            [{"kind": "event_property_is", "key": "content.m\\.mentions.room", "value": True},
             {"kind": "sender_notification_permission", "key": "room"}],
            [NOTIFY, HIGHLIGHT],
        ),
        _rule(
            ".m.rule.roomnotif",
            [{"kind": "sender_notification_permission", "key": "room"}, _match("content.body", "@room")],
            [NOTIFY, HIGHLIGHT],
        ),
        _rule(".m.rule.tombstone", [_match("type", "m.room.tombstone"), _match("state_key", "")],
              [NOTIFY, HIGHLIGHT]),
        _rule(".m.rule.reaction", [_match("type", "m.reaction")], []),
        _rule(".m.rule.room.server_acl", [_match("type", "m.room.server_acl"), _match("state_key", "")], []),
        _rule(
            ".m.rule.suppress_edits",
            [{"kind": "event_property_is", "key": "content.m\\.relates_to.rel_type", "value": "m.replace"}],
            [],
        ),
    ]
    return first, rest


def content_rules(user_id: str) -> list[JsonDict]:
    localpart = user_id[1:].split(":", 1)[0]
    return [{
        "rule_id": ".m.rule.contains_user_name", "default": True, "enabled": True,
        "pattern": localpart, "actions": [NOTIFY, SOUND_DEFAULT, HIGHLIGHT],
    }]


def underride_rules() -> list[JsonDict]:
    one_to_one: JsonDict = {"kind": "room_member_count", "is": "2"}
    return [
        _rule(".m.rule.call", [_match("type", "m.call.invite")],
              [NOTIFY, {"set_tweak": "sound", "value": "ring"}]),
        _rule(".m.rule.encrypted_room_one_to_one", [one_to_one, _match("type", "m.room.encrypted")],
              [NOTIFY, SOUND_DEFAULT]),
        _rule(".m.rule.room_one_to_one", [one_to_one, _match("type", "m.room.message")],
              [NOTIFY, SOUND_DEFAULT]),
        _rule(".m.rule.message", [_match("type", "m.room.message")], [NOTIFY]),
        _rule(".m.rule.encrypted", [_match("type", "m.room.encrypted")], [NOTIFY]),
    ]

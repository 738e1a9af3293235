"""The redaction algorithms of room versions 1-12 (pure).

Which algorithm a version uses is in ``room_versions.py`` (``redaction``
column): ``v1`` (versions 1-5), ``v6`` (6-7), ``v8`` (8), ``v9`` (9-10),
``v11`` (11-12).  Each one names the keys it keeps; everything else goes.
"""

from __future__ import annotations

import copy
from typing import Any

from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion

JsonDict = dict[str, Any]

_ALGORITHM_ORDER = {"v1": 1, "v6": 6, "v8": 8, "v9": 9, "v11": 11}

_V11_TOP_LEVEL = frozenset(
    {
        "event_id", "type", "room_id", "sender", "state_key", "content", "hashes",
        "signatures", "depth", "prev_events", "auth_events", "origin_server_ts",
    }
)
_LEGACY_TOP_LEVEL = _V11_TOP_LEVEL | {"origin", "membership", "prev_state"}


def _level(version: RoomVersion) -> int:
    return _ALGORITHM_ORDER[version.redaction]


def kept_content_keys(event_type: str, version: RoomVersion) -> frozenset[str] | None:
    """Content keys the version's redaction keeps; None means "keep all"."""
    level = _level(version)
    if event_type == "m.room.member":
        return frozenset({"membership", "join_authorised_via_users_server"} if level >= 9 else {"membership"})
    if event_type == "m.room.create":
        return None if level >= 11 else frozenset({"creator"})
    if event_type == "m.room.join_rules":
        return frozenset({"join_rule", "allow"} if level >= 8 else {"join_rule"})
    if event_type == "m.room.power_levels":
        keys = {"ban", "events", "events_default", "kick", "redact", "state_default", "users", "users_default"}
        if level >= 11:
            keys.add("invite")
        return frozenset(keys)
    if event_type == "m.room.history_visibility":
        return frozenset({"history_visibility"})
    if event_type == "m.room.aliases" and level < 6:
        return frozenset({"aliases"})
    if event_type == "m.room.redaction" and level >= 11:
        return frozenset({"redacts"})
    return frozenset()


def redact_event(event: JsonDict, version: RoomVersion | str = "11") -> JsonDict:
    """The redacted form of ``event`` (a new dict; ``unsigned`` is dropped)."""
    rules = ROOM_VERSIONS[version] if isinstance(version, str) else version
    top = _V11_TOP_LEVEL if _level(rules) >= 11 else _LEGACY_TOP_LEVEL
    out = {k: copy.deepcopy(v) for k, v in event.items() if k in top}
    content = event.get("content")
    content = content if isinstance(content, dict) else {}
    kept = kept_content_keys(str(event.get("type", "")), rules)
    if kept is None:
        new_content = copy.deepcopy(content)
    else:
        new_content = {k: copy.deepcopy(v) for k, v in content.items() if k in kept}
    if _level(rules) >= 11 and event.get("type") == "m.room.member":
        tpi = content.get("third_party_invite")
        if isinstance(tpi, dict) and "signed" in tpi:
            new_content["third_party_invite"] = {"signed": copy.deepcopy(tpi["signed"])}
    out["content"] = new_content
    return out


def redact_content(event_type: str, content: JsonDict, version: RoomVersion | str = "11") -> JsonDict:
    """Only the content part of the redaction algorithm."""
    return dict(redact_event({"type": event_type, "content": content}, version)["content"])

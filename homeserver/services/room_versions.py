"""Room versions 1-12: every rule that differs between versions, in one table.

Read a row left to right to know how a room of that version behaves; the
rest of the code asks the :class:`RoomVersion` instead of comparing version
strings.

| ver | event format                       | event id            | redaction | auth-rule changes                                  | state res |
|-----|------------------------------------|---------------------|-----------|----------------------------------------------------|-----------|
| 1   | v1: ``event_id`` in the PDU, prev/auth as ``[id, hashes]`` | ``$local:server``   | v1  | original rules (aliases, redaction level rule)    | v1        |
| 2   | v1                                 | ``$local:server``   | v1        | as 1                                               | v2        |
| 3   | v3: ids are hashes, lists of ids   | ``$`` + base64      | v1        | redactions no longer auth-checked (server checks) | v2        |
| 4   | v3                                 | ``$`` + url-safe b64| v1        | as 3                                               | v2        |
| 5   | v3                                 | url-safe            | v1        | signing-key validity enforced (federation)         | v2        |
| 6   | v3                                 | url-safe            | v6        | no m.room.aliases rule, ``notifications`` levels checked, strict canonical JSON | v2 |
| 7   | v3                                 | url-safe            | v6        | knocking                                           | v2        |
| 8   | v3                                 | url-safe            | v8        | restricted joins (``join_authorised_via_users_server``) | v2   |
| 9   | v3                                 | url-safe            | v9        | as 8                                               | v2        |
| 10  | v3                                 | url-safe            | v9        | integer-only power levels, ``knock_restricted``    | v2        |
| 11  | v3, no ``creator`` in create       | url-safe            | v11       | creator = create's sender; ``redacts`` in content  | v2        |
| 12  | v3, create has no ``room_id``      | url-safe            | v11       | room id = hash of create; creators (+ ``additional_creators``) have infinite power | v2.1 |

State resolution v1 (the original algorithm, ``state_res_v1.py``) is used by
room version 1 only; version 2 introduced v2 (``state_res.py``).

Redaction algorithms (``homeserver/services/redaction.py``): v1 keeps
``m.room.aliases`` content; v6 drops it; v8 keeps ``join_rules.allow``; v9
keeps ``member.join_authorised_via_users_server``; v11 keeps all of
``m.room.create``, ``power_levels.invite``, ``redaction.redacts`` and
``third_party_invite.signed`` and no longer keeps ``origin``,
``membership`` and ``prev_state`` at the top level.
"""

from __future__ import annotations

from dataclasses import dataclass

from common.errors import Codes, MatrixError


@dataclass(frozen=True)
class RoomVersion:
    identifier: str
    # "v1": event_id in the PDU and [id, {"sha256": ...}] references; "v3": hash ids.
    event_format: str
    # "server": $random:server; "b64": standard base64 hash; "urlsafe": URL-safe base64 hash.
    event_id_scheme: str
    redaction: str
    state_res: str
    # Rule switches (True = the rule applies in this version).
    special_aliases: bool = False
    redaction_auth_rule: bool = False
    key_validity: bool = False
    strict_canonical_json: bool = False
    notifications_levels: bool = False
    knocking: bool = False
    restricted: bool = False
    knock_restricted: bool = False
    integer_power_levels: bool = False
    creator_is_sender: bool = False
    redacts_in_content: bool = False
    room_id_from_create: bool = False
    infinite_creators: bool = False
    stable: bool = True


def _v(identifier: str, **kw: object) -> RoomVersion:
    return RoomVersion(identifier, **kw)  # type: ignore[arg-type]


_LEGACY = {"special_aliases": True, "redaction_auth_rule": True}
_V6 = {"key_validity": True, "strict_canonical_json": True, "notifications_levels": True}

ROOM_VERSIONS: dict[str, RoomVersion] = {
    "1": _v("1", event_format="v1", event_id_scheme="server", redaction="v1", state_res="v1", **_LEGACY),
    "2": _v("2", event_format="v1", event_id_scheme="server", redaction="v1", state_res="v2", **_LEGACY),
    "3": _v("3", event_format="v3", event_id_scheme="b64", redaction="v1", state_res="v2", special_aliases=True),
    "4": _v("4", event_format="v3", event_id_scheme="urlsafe", redaction="v1", state_res="v2",
            special_aliases=True),
    "5": _v("5", event_format="v3", event_id_scheme="urlsafe", redaction="v1", state_res="v2",
            special_aliases=True, key_validity=True),
    "6": _v("6", event_format="v3", event_id_scheme="urlsafe", redaction="v6", state_res="v2", **_V6),
    "7": _v("7", event_format="v3", event_id_scheme="urlsafe", redaction="v6", state_res="v2", knocking=True,
            **_V6),
    "8": _v("8", event_format="v3", event_id_scheme="urlsafe", redaction="v8", state_res="v2", knocking=True,
            restricted=True, **_V6),
    "9": _v("9", event_format="v3", event_id_scheme="urlsafe", redaction="v9", state_res="v2", knocking=True,
            restricted=True, **_V6),
    "10": _v("10", event_format="v3", event_id_scheme="urlsafe", redaction="v9", state_res="v2", knocking=True,
             restricted=True, knock_restricted=True, integer_power_levels=True, **_V6),
    "11": _v("11", event_format="v3", event_id_scheme="urlsafe", redaction="v11", state_res="v2", knocking=True,
             restricted=True, knock_restricted=True, integer_power_levels=True, creator_is_sender=True,
             redacts_in_content=True, **_V6),
    "12": _v("12", event_format="v3", event_id_scheme="urlsafe", redaction="v11", state_res="v2.1", knocking=True,
             restricted=True, knock_restricted=True, integer_power_levels=True, creator_is_sender=True,
             redacts_in_content=True, room_id_from_create=True, infinite_creators=True, **_V6),
}

DEFAULT_ROOM_VERSION = "11"
# Larger than any power level a power_levels event can express (canonical JSON: < 2**53).
INFINITE_POWER = 2**60


def room_version(identifier: object) -> RoomVersion:
    """The version's rules, or ``M_UNSUPPORTED_ROOM_VERSION`` (``M_BAD_JSON`` when it is
    not a string at all: room versions are strings, spec "Room versions")."""
    if not isinstance(identifier, str):
        raise MatrixError(400, Codes.BAD_JSON, "room_version must be a string")
    if identifier not in ROOM_VERSIONS:
        raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION,
                          f"Unsupported room version {str(identifier)[:20]!r}; supported: "
                          + ", ".join(ROOM_VERSIONS))
    return ROOM_VERSIONS[identifier]


def version_of_create(create_content: dict[str, object]) -> RoomVersion | None:
    """The version a ``m.room.create`` content names (absent means "1"); None if unknown."""
    identifier = create_content.get("room_version", "1")
    return ROOM_VERSIONS.get(identifier) if isinstance(identifier, str) else None


def capabilities(default: str) -> dict[str, object]:
    """The ``m.room_versions`` capability of ``GET /capabilities``."""
    return {
        "default": default,
        "available": {v.identifier: "stable" if v.stable else "unstable" for v in ROOM_VERSIONS.values()},
    }

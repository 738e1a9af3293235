"""Matrix identifiers: parsing and strict validation.

Everything a client supplies that ends up in a path, a key or a database
column passes through one of these checks first (the earlier application's
M8 fix: validate every client-supplied id).
"""

from __future__ import annotations

import re
import secrets
import string

from common.errors import Codes, MatrixError

# Patterns end in \Z, not $: "$" also matches before a trailing newline,
# which let "@alice\n:hs" through as a user id.

# Matrix server names: a hostname or IP literal, optionally with a port.
_SERVER_NAME = re.compile(
    r"^(?:\[[0-9A-Fa-f:.]{2,45}\]|[A-Za-z0-9.-]{1,255})(?::[0-9]{1,5})?\Z"
)
# Historical user-id grammar allows more, but newly registered localparts
# must use this subset (spec: "Historical user IDs" vs. the current grammar).
_LOCALPART = re.compile(r"^[a-z0-9._=\-/+]+\Z")
_OPAQUE = re.compile(r"^[A-Za-z0-9._~\-]+\Z")
_DEVICE_ID = re.compile(r"^[A-Za-z0-9._~\-]{1,64}\Z")
_EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+\Z")

MAX_ID_LENGTH = 255
MAX_EMAIL_LENGTH = 254


def has_control_characters(text: str) -> bool:
    """C0 controls, DEL and C1 controls: never part of an identifier, type or key."""
    return any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in text)


def is_valid_server_name(name: str) -> bool:
    return bool(_SERVER_NAME.match(name))


def is_valid_localpart(localpart: str) -> bool:
    return 0 < len(localpart) <= 200 and bool(_LOCALPART.match(localpart))


def make_user_id(localpart: str, server_name: str) -> str:
    return f"@{localpart}:{server_name}"


def split_id(identifier: str, sigil: str) -> tuple[str, str]:
    """Split ``<sigil>local:server`` into (local, server) or raise M_INVALID_PARAM."""
    if (
        not identifier
        or len(identifier) > MAX_ID_LENGTH
        or identifier[0] != sigil
        or ":" not in identifier
    ):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid identifier: {identifier[:80]!r}")
    local, _, server = identifier[1:].partition(":")
    if not local or not is_valid_server_name(server):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid identifier: {identifier[:80]!r}")
    return local, server


def parse_user_id(user_id: str) -> tuple[str, str]:
    local, server = split_id(user_id, "@")
    if any(c.isspace() or ord(c) < 0x21 or ord(c) > 0x7E for c in local):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid user id: {user_id[:80]!r}")
    return local, server


def parse_room_id(room_id: str) -> tuple[str, str]:
    """``!opaque:server``, or (room version 12) ``!`` + the create event's URL-safe hash;
    the server part is then ``""``."""
    if (
        isinstance(room_id, str) and len(room_id) == 44 and room_id.startswith("!") and ":" not in room_id
        and all(c in _URLSAFE_B64 for c in room_id[1:])
    ):
        return room_id[1:], ""
    local, server = split_id(room_id, "!")
    if not _OPAQUE.match(local):
        raise MatrixError(400, Codes.INVALID_PARAM, f"Invalid room id: {room_id[:80]!r}")
    return local, server


def is_valid_event_id(event_id: str) -> bool:
    """Event ids of every room version: ``$`` + an unpadded (URL-safe, v4+; standard, v3)
    base64 hash, or (v1/v2) ``$opaque:server``."""
    if not 4 <= len(event_id) <= MAX_ID_LENGTH or event_id[0] != "$":
        return False
    body = event_id[1:]
    if all(c in _URLSAFE_B64 for c in body):
        return True
    if len(body) == 43 and all(c in _STD_B64 for c in body):
        return True
    local, sep, server = body.partition(":")
    return bool(sep and local and _OPAQUE.match(local) and is_valid_server_name(server))


_URLSAFE_B64 = frozenset(string.ascii_letters + string.digits + "-_")
_STD_B64 = frozenset(string.ascii_letters + string.digits + "+/")


def is_valid_device_id(device_id: str) -> bool:
    return bool(_DEVICE_ID.match(device_id))


def is_valid_opaque_id(value: str, max_length: int = MAX_ID_LENGTH) -> bool:
    """Transaction ids, media ids, filter ids: a conservative opaque grammar."""
    return 0 < len(value) <= max_length and bool(_OPAQUE.match(value))


def normalise_email(email: str) -> str:
    """Lower-case and validate an e-mail address, or raise M_INVALID_PARAM."""
    candidate = email.strip().lower()
    if len(candidate) > MAX_EMAIL_LENGTH or not _EMAIL.match(candidate):
        raise MatrixError(400, Codes.INVALID_PARAM, "Invalid e-mail address")
    return candidate


def random_string(length: int, alphabet: str = string.ascii_letters) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_device_id() -> str:
    return random_string(10, string.ascii_uppercase)

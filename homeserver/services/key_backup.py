"""Server-side room key backup (Matrix ``/room_keys``): opaque, versioned.

The server never sees a key: ``auth_data`` and each session's
``session_data`` are stored as opaque JSON.  Only the newest (current)
version accepts uploads; writing to an older one answers 403
``M_WRONG_ROOM_KEYS_VERSION`` with ``current_version``.  When a session is
uploaded again the better key is kept (Matrix rules): a verified key beats
an unverified one, then the lower ``first_message_index``, then the lower
``forwarded_count``; a tie keeps the stored key.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from common.canonical_json import CanonicalJsonError, encode_canonical_json
from common.errors import Codes, MatrixError, bad_json, bad_param, missing_param, not_found
from homeserver.services.clock import Clock
from homeserver.storage.key_backup import BackupKey, BackupVersion, KeyBackupRepository

WRONG_ROOM_KEYS_VERSION = "M_WRONG_ROOM_KEYS_VERSION"
MAX_SESSION_ID = 128
MAX_ALGORITHM = 255
CURVE25519_BACKUP = "m.megolm_backup.v1.curve25519-aes-sha2"
_MAX_INDEX = 2**53 - 1


def better(new: BackupKey, old: BackupKey) -> bool:
    """Should ``new`` replace ``old`` in the backup?"""
    if new.is_verified != old.is_verified:
        return new.is_verified
    if new.first_message_index != old.first_message_index:
        return new.first_message_index < old.first_message_index
    return new.forwarded_count < old.forwarded_count


def _json_text(value: Any, what: str) -> str:
    try:
        return encode_canonical_json(value).decode("utf-8")
    except CanonicalJsonError as exc:
        raise bad_json(f"{what}: {exc}") from None


def check_auth_data(algorithm: str, auth_data: Any) -> None:
    """``auth_data`` is algorithm-dependent (spec, "Server-side key backups").

    For the spec's algorithm it is its ``AuthData`` object: ``public_key``, the
    backup's Curve25519 key (unpadded base64 of 32 bytes), and optional
    ``signatures``.  The data of any other algorithm is that algorithm's own
    business and stored as given (any JSON value).
    """
    if algorithm != CURVE25519_BACKUP:
        return
    if not isinstance(auth_data, dict):
        raise bad_json(f"auth_data of {CURVE25519_BACKUP} must be an object")
    key = auth_data.get("public_key")
    if not isinstance(key, str) or len(key) != 43:
        raise bad_json("auth_data.public_key must be an unpadded base64 Curve25519 key")
    try:
        raw = base64.b64decode(key + "=", validate=True)
    except ValueError:
        raise bad_json("auth_data.public_key must be an unpadded base64 Curve25519 key") from None
    if len(raw) != 32:
        raise bad_json("auth_data.public_key must be an unpadded base64 Curve25519 key")
    signatures = auth_data.get("signatures")
    if signatures is not None and not (isinstance(signatures, dict)
                                       and all(isinstance(v, dict) for v in signatures.values())):
        raise bad_json("auth_data.signatures must be an object of objects")


def parse_version(value: str | None) -> int:
    """A version string from a path or query; unknown formats are simply not found."""
    if value is None or value == "":
        raise missing_param("The version parameter is required")
    if not (value.isascii() and value.isdigit()) or len(value) > 15:
        raise not_found("Unknown backup version")
    return int(value)


def _check_room(room_id: Any) -> str:
    """The backup only files keys under the room id: any ``!`` id (room version 12 ids
    carry no server name), printable, at most 255 characters."""
    if (not isinstance(room_id, str) or not 1 < len(room_id) <= 255 or not room_id.startswith("!")
            or not room_id.isprintable() or room_id.strip() != room_id):
        raise bad_param("Invalid room id")
    return room_id


def _check_session(session_id: Any) -> str:
    if not isinstance(session_id, str) or not 0 < len(session_id) <= MAX_SESSION_ID:
        raise bad_param("Invalid session id")
    return session_id


def _int(data: dict[str, Any], name: str) -> int:
    value = data.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= _MAX_INDEX:
        raise bad_json(f"{name} must be a non-negative integer")
    return value


def parse_key_data(room_id: str, session_id: str, data: Any, algorithm: str = CURVE25519_BACKUP) -> BackupKey:
    """A ``KeyBackupData``; ``session_data`` is algorithm-dependent like ``auth_data``:
    an object for the spec's algorithm, any JSON value for another one."""
    if not isinstance(data, dict):
        raise bad_json("Key backup data must be an object")
    verified = data.get("is_verified")
    if not isinstance(verified, bool):
        raise bad_json("is_verified must be a boolean")
    if "session_data" not in data:
        raise bad_json("session_data is required")
    session_data = data["session_data"]
    if algorithm == CURVE25519_BACKUP and not isinstance(session_data, dict):
        raise bad_json("session_data must be an object")
    return BackupKey(
        _check_room(room_id), _check_session(session_id), _int(data, "first_message_index"),
        _int(data, "forwarded_count"), verified, _json_text(session_data, "session_data"),
    )


def key_json(key: BackupKey) -> dict[str, Any]:
    return {
        "first_message_index": key.first_message_index,
        "forwarded_count": key.forwarded_count,
        "is_verified": key.is_verified,
        "session_data": json.loads(key.session_data),
    }


class KeyBackupService:
    def __init__(self, repo: KeyBackupRepository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    # ------------------------------------------------------------- versions
    @staticmethod
    def _version_body(body: dict[str, Any]) -> tuple[str, str]:
        algorithm = body.get("algorithm")
        if not isinstance(algorithm, str) or not 0 < len(algorithm) <= MAX_ALGORITHM:
            raise bad_json("algorithm must be a non-empty string")
        if "auth_data" not in body:
            raise bad_json("auth_data is required")
        auth_data = body["auth_data"]
        check_auth_data(algorithm, auth_data)
        return algorithm, _json_text(auth_data, "auth_data")

    async def create_version(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        algorithm, auth_data = self._version_body(body)
        version = await self.repo.create_version(user_id, algorithm, auth_data, self.clock.now_ms())
        return {"version": str(version)}

    async def _version(self, user_id: str, version: int | None) -> BackupVersion:
        found = await self.repo.get_version(user_id, version)
        if found is None:
            raise not_found("No current backup version" if version is None else "Unknown backup version")
        return found

    async def get_version(self, user_id: str, version: str | None) -> dict[str, Any]:
        info = await self._version(user_id, None if version is None else parse_version(version))
        return {
            "algorithm": info.algorithm,
            "auth_data": json.loads(info.auth_data),
            "count": await self.repo.count(user_id, info.version),
            "etag": str(info.etag),
            "version": str(info.version),
        }

    async def update_version(self, user_id: str, version: str, body: dict[str, Any]) -> dict[str, Any]:
        number = parse_version(version)
        algorithm, auth_data = self._version_body(body)
        if "version" in body and body["version"] != version:
            raise bad_param("version in the body does not match the path")
        info = await self._version(user_id, number)
        if info.algorithm != algorithm:
            raise bad_param("The algorithm of a backup version cannot change")
        await self.repo.update_auth_data(user_id, number, auth_data)
        return {}

    async def delete_version(self, user_id: str, version: str) -> dict[str, Any]:
        if not await self.repo.delete_version(user_id, parse_version(version)):
            raise not_found("Unknown backup version")
        return {}

    # ------------------------------------------------------------------ keys
    async def _writable(self, user_id: str, version: str | None) -> BackupVersion:
        number = parse_version(version)
        current = await self.repo.get_version(user_id, None)
        if current is None:
            raise not_found("No current backup version")
        if current.version != number:
            raise MatrixError(
                403, WRONG_ROOM_KEYS_VERSION, "That is not the current backup version",
                extra={"current_version": str(current.version)},
            )
        return current

    async def _counts(self, user_id: str, version: int) -> dict[str, Any]:
        info = await self._version(user_id, version)
        return {"count": await self.repo.count(user_id, version), "etag": str(info.etag)}

    async def put_keys(
        self, user_id: str, version: str | None, body: dict[str, Any],
        room_id: str | None = None, session_id: str | None = None,
    ) -> dict[str, Any]:
        """PUT /room_keys/keys[/{roomId}[/{sessionId}]]"""
        info = await self._writable(user_id, version)
        keys: list[BackupKey] = []
        if room_id is not None and session_id is not None:
            keys.append(parse_key_data(room_id, session_id, body, info.algorithm))
        elif room_id is not None:
            keys.extend(self._room_keys(room_id, body, info.algorithm))
        else:
            rooms = body.get("rooms")
            if not isinstance(rooms, dict):
                raise bad_json("rooms must be an object")
            for rid, room in rooms.items():
                keys.extend(self._room_keys(rid, room, info.algorithm))
        await self.repo.put_keys(user_id, info.version, keys, better)
        return await self._counts(user_id, info.version)

    @staticmethod
    def _room_keys(room_id: str, room: Any, algorithm: str) -> list[BackupKey]:
        if not isinstance(room, dict) or not isinstance(room.get("sessions"), dict):
            raise bad_json("Each room must be an object with sessions")
        return [parse_key_data(room_id, sid, data, algorithm) for sid, data in room["sessions"].items()]

    async def get_keys(
        self, user_id: str, version: str | None, room_id: str | None = None, session_id: str | None = None,
    ) -> dict[str, Any]:
        """GET /room_keys/keys[/{roomId}[/{sessionId}]]"""
        if room_id is not None:
            _check_room(room_id)
        if session_id is not None:
            _check_session(session_id)
        info = await self._version(user_id, parse_version(version))
        keys = await self.repo.get_keys(user_id, info.version, room_id, session_id)
        if session_id is not None:
            if not keys:
                raise MatrixError(404, Codes.NOT_FOUND, "No backed-up key for that session")
            return key_json(keys[0])
        rooms: dict[str, Any] = {}
        for key in keys:
            rooms.setdefault(key.room_id, {"sessions": {}})["sessions"][key.session_id] = key_json(key)
        if room_id is not None:
            return rooms.get(room_id, {"sessions": {}})  # type: ignore[no-any-return]
        return {"rooms": rooms}

    async def delete_keys(
        self, user_id: str, version: str | None, room_id: str | None = None, session_id: str | None = None,
    ) -> dict[str, Any]:
        """DELETE /room_keys/keys[/{roomId}[/{sessionId}]]"""
        if room_id is not None:
            _check_room(room_id)
        if session_id is not None:
            _check_session(session_id)
        info = await self._version(user_id, parse_version(version))
        await self.repo.delete_keys(user_id, info.version, room_id, session_id)
        return await self._counts(user_id, info.version)

"""Pushers (client-server API, "Push notifications": ``/pushers``, ``/pushers/set``).

A pusher belongs to the device whose access token created it and goes when
that device goes (logout, deletion, a password change that logs others out).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from common.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.storage.pushers import PusherRepository

JsonDict = dict[str, Any]

NOTIFY_PATH = "/_matrix/push/v1/notify"
MAX_PUSHKEY_BYTES = 512
MAX_APP_ID = 64
_LIMITS = {"app_display_name": 255, "device_display_name": 255, "profile_tag": 255, "lang": 64}


def _missing(name: str) -> MatrixError:
    return MatrixError(400, Codes.MISSING_PARAM, f"{name} is required")


def _string(body: JsonDict, name: str, limit: int, required: bool = True) -> str | None:
    value = body.get(name)
    if value is None:
        if required:
            raise _missing(name)
        return None
    if not isinstance(value, str) or not value or len(value) > limit:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must be a string of 1 to {limit} characters")
    return value


def check_gateway_url(url: Any) -> str:
    if not isinstance(url, str):
        raise _missing("data.url")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path != NOTIFY_PATH:
        raise MatrixError(400, Codes.INVALID_PARAM, f"data.url must be an http(s) URL with the path {NOTIFY_PATH}")
    return url


class PusherService:
    def __init__(self, repo: PusherRepository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    async def list_pushers(self, user_id: str) -> JsonDict:
        """GET /pushers"""
        return {"pushers": [row.pusher for row in await self.repo.for_user(user_id)]}

    async def set(self, user_id: str, device_id: str, body: JsonDict) -> None:
        """POST /pushers/set: create, replace, or (``kind: null``) delete."""
        pushkey = _string(body, "pushkey", MAX_PUSHKEY_BYTES)
        app_id = _string(body, "app_id", MAX_APP_ID)
        assert pushkey is not None and app_id is not None
        if len(pushkey.encode("utf-8")) > MAX_PUSHKEY_BYTES:
            raise MatrixError(400, Codes.INVALID_PARAM, f"pushkey is at most {MAX_PUSHKEY_BYTES} bytes")
        if "kind" not in body:
            raise _missing("kind")
        kind = body["kind"]
        if kind is None:
            await self.repo.delete(user_id, app_id, pushkey)
            return
        if kind != "http":
            raise MatrixError(400, Codes.INVALID_PARAM, "Only http pushers are supported")
        pusher: JsonDict = {"pushkey": pushkey, "kind": kind, "app_id": app_id}
        for name, limit in _LIMITS.items():
            value = _string(body, name, limit, required=name != "profile_tag")
            if value is not None:
                pusher[name] = value
        data = body.get("data")
        if not isinstance(data, dict):
            raise _missing("data")
        check_gateway_url(data.get("url"))
        if data.get("format") not in (None, "event_id_only"):
            raise MatrixError(400, Codes.INVALID_PARAM, "data.format must be event_id_only if given")
        pusher["data"] = data
        append = body.get("append", False)
        if not isinstance(append, bool):
            raise MatrixError(400, Codes.BAD_JSON, "append must be a boolean")
        if not append:
            await self.repo.delete_for_others(user_id, app_id, pushkey)
        await self.repo.upsert(user_id, device_id, pusher, self.clock.now_ms())

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        await self.repo.delete_for_devices(user_id, device_ids)

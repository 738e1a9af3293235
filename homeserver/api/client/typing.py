"""Typing notifications."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, path_param, read_json, require_auth, services


async def set_typing(request: Request) -> Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/typing/{userId}"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).typing.set_typing(
        requester.user_id, path_param(request, "room_id"), path_param(request, "user_id"), body
    )
    return json_response({})

"""Presence."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, path_param, read_json, require_auth, services


async def get_status(request: Request) -> Response:
    """GET /_matrix/client/v3/presence/{userId}/status"""
    requester = await require_auth(request)
    return json_response(
        await services(request).presence.get_status(requester.user_id, path_param(request, "user_id"))
    )


async def set_status(request: Request) -> Response:
    """PUT /_matrix/client/v3/presence/{userId}/status"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).presence.set_status(
        requester.user_id, path_param(request, "user_id"), body
    )
    return json_response({})

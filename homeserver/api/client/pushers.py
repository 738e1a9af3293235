"""Pushers: ``GET /pushers`` and ``POST /pushers/set``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, read_json, require_auth, services


async def get_pushers(request: Request) -> Response:
    """GET /_matrix/client/v3/pushers"""
    requester = await require_auth(request)
    return json_response(await services(request).pushers.list_pushers(requester.user_id))


async def set_pusher(request: Request) -> Response:
    """POST /_matrix/client/v3/pushers/set"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).pushers.set(requester.user_id, requester.device_id, body)
    return json_response({})

"""Spaces and threads of rooms: ``/hierarchy``, ``/relations``, ``/threads``, ``/timestamp_to_event``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.client.rooms import room_id_param
from homeserver.api.http import json_response, require_auth, services


async def hierarchy(request: Request) -> Response:
    """GET /_matrix/client/v1/rooms/{roomId}/hierarchy"""
    requester = await require_auth(request)
    return json_response(await services(request).spaces.hierarchy(
        requester.user_id, room_id_param(request), dict(request.query_params)
    ))

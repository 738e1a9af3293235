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


async def relations(request: Request) -> Response:
    """GET /_matrix/client/v1/rooms/{roomId}/relations/{eventId}[/{relType}[/{eventType}]]"""
    requester = await require_auth(request)
    params = request.path_params
    return json_response(await services(request).relations.relations(
        requester.user_id, requester.device_id, room_id_param(request), str(params["event_id"]),
        params.get("rel_type"), params.get("event_type"), dict(request.query_params),
    ))


async def threads(request: Request) -> Response:
    """GET /_matrix/client/v1/rooms/{roomId}/threads"""
    requester = await require_auth(request)
    return json_response(await services(request).relations.threads(
        requester.user_id, requester.device_id, room_id_param(request), dict(request.query_params)
    ))


async def timestamp_to_event(request: Request) -> Response:
    """GET /_matrix/client/v1/rooms/{roomId}/timestamp_to_event"""
    requester = await require_auth(request)
    return json_response(await services(request).relations.timestamp_to_event(
        requester.user_id, room_id_param(request), dict(request.query_params)
    ))

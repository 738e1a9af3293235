"""The deprecated v1 sync endpoints (``/events``, ``/initialSync``), still used by clients."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.client.messages import int_param
from homeserver.api.http import json_response, path_param, require_auth, services


def _limit(request: Request) -> int | None:
    return int_param(request, "limit", -1) if "limit" in request.query_params else None


async def events(request: Request) -> Response:
    """GET /_matrix/client/v3/events"""
    requester = await require_auth(request)
    query = request.query_params
    return json_response(await services(request).legacy_sync.events(
        requester.user_id, requester.device_id, query.get("from") or None,
        int_param(request, "timeout", 0), query.get("room_id"),
    ))


async def initial_sync(request: Request) -> Response:
    """GET /_matrix/client/v3/initialSync"""
    requester = await require_auth(request)
    archived = request.query_params.get("archived", "false")
    if archived not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, "archived must be true or false")
    return json_response(await services(request).legacy_sync.initial_sync(
        requester.user_id, requester.device_id, _limit(request), archived == "true"
    ))


async def room_initial_sync(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/initialSync"""
    requester = await require_auth(request)
    return json_response(await services(request).legacy_sync.room_initial_sync(
        requester.user_id, requester.device_id, path_param(request, "room_id"), _limit(request)
    ))

"""The room graph as other servers read it: ``event``, ``state``, ``state_ids``, ``event_auth``,
``backfill``, ``get_missing_events`` (rules in :mod:`homeserver.services.federation_reads`)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.federation.auth import authenticate
from homeserver.api.http import json_response, read_json


def rooms(request: Request) -> Any:
    """The :class:`homeserver.services.federation_rooms.FederationRooms` of this homeserver."""
    return request.app.state.hs.federation_rooms


def _param(request: Request, name: str) -> str:
    return str(request.path_params[name])


def _event_id_query(request: Request) -> str:
    value = request.query_params.get("event_id")
    if not value:
        raise MatrixError(400, Codes.MISSING_PARAM, "The event_id query parameter is required")
    return value


def _int_query(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        return int(raw)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must be an integer") from None


async def get_event(request: Request) -> Response:
    """GET /_matrix/federation/v1/event/{eventId}"""
    origin = await authenticate(request)
    return json_response(await rooms(request).reads.event(origin, _param(request, "event_id")))


async def get_state(request: Request) -> Response:
    """GET /_matrix/federation/v1/state/{roomId}"""
    origin = await authenticate(request)
    return json_response(await rooms(request).reads.state(origin, _param(request, "room_id"),
                                                          _event_id_query(request)))


async def get_state_ids(request: Request) -> Response:
    """GET /_matrix/federation/v1/state_ids/{roomId}"""
    origin = await authenticate(request)
    return json_response(await rooms(request).reads.state_ids(origin, _param(request, "room_id"),
                                                              _event_id_query(request)))


async def get_event_auth(request: Request) -> Response:
    """GET /_matrix/federation/v1/event_auth/{roomId}/{eventId}"""
    origin = await authenticate(request)
    return json_response(await rooms(request).reads.event_auth(origin, _param(request, "room_id"),
                                                               _param(request, "event_id")))


async def backfill(request: Request) -> Response:
    """GET /_matrix/federation/v1/backfill/{roomId}"""
    origin = await authenticate(request)
    from_ids = request.query_params.getlist("v")
    if not from_ids:
        raise MatrixError(400, Codes.MISSING_PARAM, "At least one v query parameter is required")
    limit = _int_query(request, "limit", 10)
    return json_response(await rooms(request).reads.backfill(origin, _param(request, "room_id"), from_ids, limit))


def _id_list(body: dict[str, Any], name: str) -> list[str]:
    value = body.get(name, [])
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value) or len(value) > 100:
        raise MatrixError(400, Codes.BAD_JSON, f"{name} must be a list of at most 100 event ids")
    return value


async def get_missing_events(request: Request) -> Response:
    """POST /_matrix/federation/v1/get_missing_events/{roomId}"""
    origin = await authenticate(request)
    body = await read_json(request)
    limit, min_depth = body.get("limit", 10), body.get("min_depth", 0)
    if not isinstance(limit, int) or not isinstance(min_depth, int):
        raise MatrixError(400, Codes.BAD_JSON, "limit and min_depth must be integers")
    return json_response(await rooms(request).reads.missing_events(
        origin, _param(request, "room_id"), _id_list(body, "earliest_events"), _id_list(body, "latest_events"),
        limit, min_depth))

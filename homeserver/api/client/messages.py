"""Messages: send, redact, /messages, /event, /context."""

from __future__ import annotations

import secrets

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.client.rooms import room_id_param
from homeserver.api.http import json_response, parse_json_text, read_json, require_auth, services
from homeserver.services.sync_filter import RoomEventFilter


def int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must be an integer") from None
    if value < 0:
        raise MatrixError(400, Codes.INVALID_PARAM, f"{name} must not be negative")
    return value


def filter_param(request: Request) -> RoomEventFilter:
    raw = request.query_params.get("filter")
    if raw is None:
        return RoomEventFilter()
    return RoomEventFilter.parse(parse_json_text(raw, "filter"))


async def send(request: Request) -> Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/send/{eventType}/{txnId}"""
    requester = await require_auth(request)
    content = await read_json(request)
    event_id = await services(request).messages.send(
        requester.user_id, requester.device_id, room_id_param(request),
        str(request.path_params["event_type"]), _txn_id(request), content,
        requester.status,
    )
    return json_response({"event_id": event_id})


def _txn_id(request: Request) -> str:
    """The path's transaction id; the legacy POST forms without one get a fresh id each
    (so, as there, a repeated POST is a new event)."""
    txn_id = request.path_params.get("txn_id")
    return str(txn_id) if txn_id is not None else "post-" + secrets.token_urlsafe(18)


async def send_legacy(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/send/{eventType}: the pre-r0 form without a
    transaction id that Synapse still serves (not in the current spec; clients of old
    bots and SyTest use it)."""
    return await send(request)


async def redact(request: Request) -> Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/redact/{eventId}/{txnId}
    (also the legacy POST .../redact/{eventId} without a transaction id)"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    event_id = await services(request).messages.redact(
        requester.user_id, requester.device_id, room_id_param(request),
        str(request.path_params["event_id"]), _txn_id(request), body.get("reason"),
    )
    return json_response({"event_id": event_id})


async def messages(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/messages"""
    requester = await require_auth(request)
    query = request.query_params
    body = await services(request).messages.messages(
        requester.user_id, requester.device_id, room_id_param(request),
        query.get("from"), query.get("to"), query.get("dir", "b"), int_param(request, "limit", 10),
        filter_param(request),
    )
    return json_response(body)


async def get_event(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/event/{eventId}"""
    requester = await require_auth(request)
    event = await services(request).messages.get_event(
        requester.user_id, requester.device_id, room_id_param(request), str(request.path_params["event_id"])
    )
    return json_response(event)


async def get_event_by_id(request: Request) -> Response:
    """GET /_matrix/client/v3/events/{eventId} (deprecated): an event of any room the user may see"""
    requester = await require_auth(request)
    event = await services(request).messages.get_event_anywhere(
        requester.user_id, requester.device_id, str(request.path_params["event_id"])
    )
    return json_response(event)


async def context(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/context/{eventId}"""
    requester = await require_auth(request)
    body = await services(request).messages.context(
        requester.user_id, requester.device_id, room_id_param(request), str(request.path_params["event_id"]),
        int_param(request, "limit", 10), filter_param(request),
    )
    return json_response(body)

"""Read receipts and read markers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, path_param, read_json, require_auth, services


async def post_receipt(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/receipt/{receiptType}/{eventId}"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    await services(request).receipts.post_receipt(
        requester.user_id, path_param(request, "room_id"), path_param(request, "receipt_type"),
        path_param(request, "event_id"), body,
    )
    return json_response({})


async def set_read_markers(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/read_markers"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    await services(request).receipts.set_read_markers(
        requester.user_id, path_param(request, "room_id"), body
    )
    return json_response({})

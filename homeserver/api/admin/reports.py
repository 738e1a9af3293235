"""Reports: the client endpoints that file them and the admin endpoints that read them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.admin.auth import admin, param, require_admin
from homeserver.api.http import json_response, read_json, require_auth


async def report_event(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/report/{eventId}"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    await admin(request).reports.report_event(requester.user_id, requester.device_id,
                                              param(request, "room_id"), param(request, "event_id"), body)
    return json_response({})


async def report_room(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/report"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    await admin(request).reports.report_room(requester.user_id, param(request, "room_id"), body)
    return json_response({})


async def list_reports(request: Request) -> Response:
    """GET /_synapse/admin/v1/event_reports"""
    await require_admin(request)
    return json_response(await admin(request).reports.list(request.query_params))


async def get_report(request: Request) -> Response:
    """GET /_synapse/admin/v1/event_reports/{reportId}"""
    await require_admin(request)
    return json_response(await admin(request).reports.get(param(request, "report_id")))


async def delete_report(request: Request) -> Response:
    """DELETE /_synapse/admin/v1/event_reports/{reportId}"""
    await require_admin(request)
    await admin(request).reports.delete(param(request, "report_id"))
    return json_response({})

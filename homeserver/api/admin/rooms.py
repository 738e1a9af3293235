"""Admin API: rooms (``/_synapse/admin/v1/rooms...``) and server notices."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.admin.auth import admin, param, require_admin
from homeserver.api.http import json_response, read_json


async def list_rooms(request: Request) -> Response:
    """GET /_synapse/admin/v1/rooms"""
    await require_admin(request)
    return json_response(await admin(request).rooms.list_rooms(request.query_params))


async def room_details(request: Request) -> Response:
    """GET /_synapse/admin/v1/rooms/{roomId}"""
    await require_admin(request)
    return json_response(await admin(request).rooms.details(param(request, "room_id")))


async def room_members(request: Request) -> Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/members"""
    await require_admin(request)
    return json_response(await admin(request).rooms.members(param(request, "room_id")))


async def room_state(request: Request) -> Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/state"""
    await require_admin(request)
    return json_response(await admin(request).rooms.state(param(request, "room_id")))


async def delete_room(request: Request) -> Response:
    """DELETE /_synapse/admin/v1/rooms/{roomId}"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    return json_response(await admin(request).rooms.delete(requester.user_id, param(request, "room_id"), body))


async def get_block(request: Request) -> Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/block"""
    await require_admin(request)
    return json_response(await admin(request).rooms.block_status(param(request, "room_id")))


async def put_block(request: Request) -> Response:
    """PUT /_synapse/admin/v1/rooms/{roomId}/block"""
    requester = await require_admin(request)
    body = await read_json(request)
    return json_response(
        await admin(request).rooms.set_block(requester.user_id, param(request, "room_id"), body.get("block"))
    )


async def send_server_notice(request: Request) -> Response:
    """POST /_synapse/admin/v1/send_server_notice"""
    await require_admin(request)
    body = await read_json(request)
    return json_response(await admin(request).notices.send(body))


async def delete_room_v2(request: Request) -> Response:
    """DELETE /_synapse/admin/v2/rooms/{roomId}"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    return json_response(await admin(request).room_tools.delete_v2(requester.user_id, param(request, "room_id"), body))


async def delete_status_for_room(request: Request) -> Response:
    """GET /_synapse/admin/v2/rooms/{roomId}/delete_status"""
    await require_admin(request)
    return json_response(await admin(request).room_tools.status_for_room(param(request, "room_id")))


async def delete_status(request: Request) -> Response:
    """GET /_synapse/admin/v2/rooms/delete_status/{deleteId}"""
    await require_admin(request)
    return json_response(await admin(request).room_tools.status(param(request, "delete_id")))


async def join_user(request: Request) -> Response:
    """POST /_synapse/admin/v1/join/{roomId}"""
    requester = await require_admin(request)
    body = await read_json(request)
    return json_response(await admin(request).room_tools.join(requester.user_id, param(request, "room_id"), body))


async def make_room_admin(request: Request) -> Response:
    """POST /_synapse/admin/v1/rooms/{roomId}/make_room_admin"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    return json_response(
        await admin(request).room_tools.make_room_admin(requester.user_id, param(request, "room_id"), body))


async def purge_history(request: Request) -> Response:
    """POST /_synapse/admin/v1/purge_history/{roomId}[/{eventId}]"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    event_id = request.path_params.get("event_id")
    return json_response(await admin(request).room_tools.purge_history(
        requester.user_id, param(request, "room_id"), str(event_id) if event_id else None, body))


async def purge_status(request: Request) -> Response:
    """GET /_synapse/admin/v1/purge_history_status/{purgeId}"""
    await require_admin(request)
    return json_response(await admin(request).room_tools.purge_status(param(request, "purge_id")))


async def room_messages(request: Request) -> Response:
    """GET /_synapse/admin/v1/rooms/{roomId}/messages"""
    await require_admin(request)
    return json_response(await admin(request).rooms.messages(param(request, "room_id"), request.query_params))

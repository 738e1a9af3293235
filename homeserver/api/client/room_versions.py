"""Room versions on the client API: capabilities, upgrades, knocking."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.identifiers import parse_room_id
from homeserver.api.client.rooms import room_id_param
from homeserver.api.http import json_response, read_json, require_auth, services
from homeserver.services.room_versions import capabilities as room_version_capabilities


async def capabilities(request: Request) -> Response:
    """GET /_matrix/client/v3/capabilities"""
    await require_auth(request)
    default = request.app.state.hs.config.rooms.default_version
    return json_response({"capabilities": {"m.room_versions": room_version_capabilities(default)}})


async def upgrade(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/upgrade"""
    requester = await require_auth(request)
    body = await read_json(request)
    new_room = await services(request).upgrades.upgrade(requester.user_id, room_id_param(request), body)
    return json_response({"replacement_room": new_room})


async def knock(request: Request) -> Response:
    """POST /_matrix/client/v3/knock/{roomIdOrAlias}"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    target = str(request.path_params["room_id_or_alias"])
    if not target.startswith("#"):
        parse_room_id(target)
    room_id = await services(request).membership.knock(requester.user_id, target, body.get("reason"))
    return json_response({"room_id": room_id})

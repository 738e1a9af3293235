"""Room aliases and the public room directory."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, path_param, read_json, require_auth, services


async def put_alias(request: Request) -> Response:
    """PUT /_matrix/client/v3/directory/room/{roomAlias}"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).room_directory.put_alias(
        requester.user_id, path_param(request, "room_alias"), body.get("room_id")
    )
    return json_response({})


async def get_alias(request: Request) -> Response:
    """GET /_matrix/client/v3/directory/room/{roomAlias} (no authentication needed)"""
    return json_response(await services(request).room_directory.resolve(path_param(request, "room_alias")))


async def delete_alias(request: Request) -> Response:
    """DELETE /_matrix/client/v3/directory/room/{roomAlias}"""
    requester = await require_auth(request)
    await services(request).room_directory.delete_alias(requester.user_id, path_param(request, "room_alias"))
    return json_response({})


async def room_aliases(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/aliases"""
    requester = await require_auth(request)
    return json_response(
        await services(request).room_directory.room_aliases(requester.user_id, path_param(request, "room_id"))
    )


async def get_visibility(request: Request) -> Response:
    """GET /_matrix/client/v3/directory/list/room/{roomId} (no authentication needed)"""
    return json_response(await services(request).room_directory.visibility(path_param(request, "room_id")))


async def set_visibility(request: Request) -> Response:
    """PUT /_matrix/client/v3/directory/list/room/{roomId}"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).room_directory.set_visibility(
        requester.user_id, path_param(request, "room_id"), body.get("visibility")
    )
    return json_response({})


async def public_rooms_get(request: Request) -> Response:
    """GET /_matrix/client/v3/publicRooms"""
    params = request.query_params
    return json_response(await services(request).room_directory.public_rooms(
        params.get("limit"), params.get("since"), None, params.get("server")
    ))


async def public_rooms_post(request: Request) -> Response:
    """POST /_matrix/client/v3/publicRooms"""
    await require_auth(request)
    body = await read_json(request, allow_empty=True)
    return json_response(await services(request).room_directory.public_rooms_search(
        body, request.query_params.get("server")))

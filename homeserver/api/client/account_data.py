"""Account data (global and per room) and room tags."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, path_param, read_json, require_auth, services


async def put_global(request: Request) -> Response:
    """PUT /_matrix/client/v3/user/{userId}/account_data/{type}"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).account_data.put_global(
        requester.user_id, path_param(request, "user_id"), path_param(request, "type"), body
    )
    return json_response({})


async def get_global(request: Request) -> Response:
    """GET /_matrix/client/v3/user/{userId}/account_data/{type}"""
    requester = await require_auth(request)
    return json_response(
        await services(request).account_data.get_global(
            requester.user_id, path_param(request, "user_id"), path_param(request, "type")
        )
    )


async def put_room(request: Request) -> Response:
    """PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).account_data.put_room(
        requester.user_id, path_param(request, "user_id"), path_param(request, "room_id"),
        path_param(request, "type"), body,
    )
    return json_response({})


async def get_room(request: Request) -> Response:
    """GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/account_data/{type}"""
    requester = await require_auth(request)
    return json_response(
        await services(request).account_data.get_room(
            requester.user_id, path_param(request, "user_id"), path_param(request, "room_id"),
            path_param(request, "type"),
        )
    )


async def get_tags(request: Request) -> Response:
    """GET /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags"""
    requester = await require_auth(request)
    return json_response(
        await services(request).account_data.tags(
            requester.user_id, path_param(request, "user_id"), path_param(request, "room_id")
        )
    )


async def put_tag(request: Request) -> Response:
    """PUT /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}"""
    requester = await require_auth(request)
    body = await read_json(request, allow_floats=True)
    await services(request).account_data.put_tag(
        requester.user_id, path_param(request, "user_id"), path_param(request, "room_id"),
        path_param(request, "tag"), body,
    )
    return json_response({})


async def delete_tag(request: Request) -> Response:
    """DELETE /_matrix/client/v3/user/{userId}/rooms/{roomId}/tags/{tag}"""
    requester = await require_auth(request)
    await services(request).account_data.delete_tag(
        requester.user_id, path_param(request, "user_id"), path_param(request, "room_id"),
        path_param(request, "tag"),
    )
    return json_response({})

"""Queries other servers make about our users, aliases and public rooms: ``query/profile``,
``query/directory``, ``publicRooms``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.federation.auth import authenticate
from homeserver.api.http import json_response, read_json, services

# What a remote server may read: only fields everyone may see (an anonymous reader).
ANONYMOUS = ""


def _required(request: Request, name: str) -> str:
    value = request.query_params.get(name)
    if not value:
        raise MatrixError(400, Codes.MISSING_PARAM, f"The {name} query parameter is required")
    return value


async def query_profile(request: Request) -> Response:
    """GET /_matrix/federation/v1/query/profile"""
    await authenticate(request)
    user_id = _required(request, "user_id")
    profiles = services(request).profiles
    field = request.query_params.get("field")
    if field is not None:
        return json_response(await profiles.get_field(ANONYMOUS, user_id, field))
    return json_response(await profiles.get_profile(ANONYMOUS, user_id))


async def query_directory(request: Request) -> Response:
    """GET /_matrix/federation/v1/query/directory"""
    await authenticate(request)
    alias = _required(request, "room_alias")
    server = request.app.state.hs.config.server_name
    if not alias.endswith(":" + server):
        raise MatrixError(404, Codes.NOT_FOUND, "The alias is not one of this server's")
    return json_response(await services(request).room_directory.resolve(alias))


async def public_rooms_get(request: Request) -> Response:
    """GET /_matrix/federation/v1/publicRooms"""
    await authenticate(request)
    params = request.query_params
    return json_response(await services(request).room_directory.public_rooms(
        params.get("limit"), params.get("since"), None, None))


async def public_rooms_post(request: Request) -> Response:
    """POST /_matrix/federation/v1/publicRooms"""
    await authenticate(request)
    body = await read_json(request, allow_empty=True)
    return json_response(await services(request).room_directory.public_rooms_search(body, None))

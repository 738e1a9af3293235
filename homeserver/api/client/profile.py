"""Profiles: Matrix display name and avatar, Parley's extra fields and their visibility."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import access_token, json_response, path_param, read_json, require_auth, services

# Reading a profile needs no token (spec); without one only public fields show.
ANONYMOUS = ""


async def _reader(request: Request) -> str:
    if access_token(request) is None:
        return ANONYMOUS
    return (await require_auth(request)).user_id


async def get_profile(request: Request) -> Response:
    """GET /_matrix/client/v3/profile/{userId}"""
    reader = await _reader(request)
    return json_response(await services(request).profiles.read(reader, path_param(request, "user_id")))


async def get_field(request: Request) -> Response:
    """GET /_matrix/client/v3/profile/{userId}/{keyName}"""
    reader = await _reader(request)
    return json_response(
        await services(request).profiles.read(reader, path_param(request, "user_id"), path_param(request, "key_name"))
    )


async def set_field(request: Request) -> Response:
    """PUT /_matrix/client/v3/profile/{userId}/{keyName}"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).profiles.set_field(
        requester.user_id, path_param(request, "user_id"), path_param(request, "key_name"), body
    )
    return json_response({})


async def delete_field(request: Request) -> Response:
    """DELETE /_matrix/client/v3/profile/{userId}/{keyName}"""
    requester = await require_auth(request)
    await services(request).profiles.delete_field(
        requester.user_id, path_param(request, "user_id"), path_param(request, "key_name")
    )
    return json_response({})


async def get_visibility(request: Request) -> Response:
    """GET /_matrix/client/unstable/im.parley/profile/visibility"""
    requester = await require_auth(request)
    return json_response(await services(request).profiles.visibility(requester.user_id))


async def set_visibility(request: Request) -> Response:
    """PUT /_matrix/client/unstable/im.parley/profile/visibility"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).profiles.set_visibility(requester.user_id, body))

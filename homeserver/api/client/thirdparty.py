"""Third-party networks (client-server API, "Third-party Networks"): bridges are
application services, and Parley has none, so no protocol exists.  Every
lookup answers as the spec does for an unknown protocol or an id nobody
bridges."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.http import json_response, path_param, require_auth

NO_BRIDGES = "This server has no bridges: protocol {!r} is unknown"


async def protocols(request: Request) -> Response:
    """GET /_matrix/client/v3/thirdparty/protocols"""
    await require_auth(request)
    return json_response({})


async def _unknown_protocol(request: Request) -> Response:
    await require_auth(request)
    raise MatrixError(404, Codes.NOT_FOUND, NO_BRIDGES.format(path_param(request, "protocol")[:64]))


async def protocol(request: Request) -> Response:
    """GET /_matrix/client/v3/thirdparty/protocol/{protocol}"""
    return await _unknown_protocol(request)


async def location_for_protocol(request: Request) -> Response:
    """GET /_matrix/client/v3/thirdparty/location/{protocol}"""
    return await _unknown_protocol(request)


async def user_for_protocol(request: Request) -> Response:
    """GET /_matrix/client/v3/thirdparty/user/{protocol}"""
    return await _unknown_protocol(request)


async def _reverse(request: Request, name: str) -> Response:
    await require_auth(request)
    if not request.query_params.get(name):
        raise MatrixError(400, Codes.MISSING_PARAM, f"{name} is required")
    return json_response([])


async def location(request: Request) -> Response:
    """GET /_matrix/client/v3/thirdparty/location?alias=: no portal rooms are bridged."""
    return await _reverse(request, "alias")


async def user(request: Request) -> Response:
    """GET /_matrix/client/v3/thirdparty/user?userid=: no Matrix user is a bridged one."""
    return await _reverse(request, "userid")

"""End-to-end keys and devices of our users, for other servers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.federation.auth import authenticate, federation
from homeserver.api.http import json_response, path_param, read_json


async def query_keys(request: Request) -> Response:
    """POST /_matrix/federation/v1/user/keys/query"""
    origin = await authenticate(request)
    return json_response(await federation(request).user_keys.query(origin, await read_json(request)))


async def claim_keys(request: Request) -> Response:
    """POST /_matrix/federation/v1/user/keys/claim"""
    origin = await authenticate(request)
    return json_response(await federation(request).user_keys.claim(origin, await read_json(request)))


async def user_devices(request: Request) -> Response:
    """GET /_matrix/federation/v1/user/devices/{userId}"""
    origin = await authenticate(request)
    return json_response(await federation(request).user_keys.devices_of(origin, path_param(request, "user_id")))

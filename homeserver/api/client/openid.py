"""OpenID: tokens for third parties, and the federation endpoint that checks them."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, path_param, read_json, require_auth, services


async def request_token(request: Request) -> Response:
    """POST /_matrix/client/v3/user/{userId}/openid/request_token"""
    requester = await require_auth(request)
    await read_json(request, allow_empty=True)
    return json_response(services(request).openid.request_token(requester.user_id, path_param(request, "user_id")))


async def userinfo(request: Request) -> Response:
    """GET /_matrix/federation/v1/openid/userinfo (the OpenID token, not an access token)"""
    return json_response(services(request).openid.userinfo(request.query_params.get("access_token")))

"""Login, logout and whoami."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.http import client_ip, json_response, read_json, require_auth, services
from homeserver.services.accounts import PASSWORD_STAGE, SIGNATURE_LOGIN


async def login_flows(request: Request) -> Response:
    """GET /_matrix/client/v3/login"""
    return json_response({"flows": [{"type": PASSWORD_STAGE}, {"type": SIGNATURE_LOGIN}]})


async def refresh(request: Request) -> Response:
    """POST /_matrix/client/v3/refresh

    Parley issues no refresh tokens (its access tokens do not expire, which the
    spec allows), so every refresh token is unknown."""
    body = await read_json(request)
    token = body.get("refresh_token")
    if token is None:
        raise MatrixError(400, Codes.MISSING_PARAM, "refresh_token is required")
    if not isinstance(token, str):
        raise MatrixError(400, Codes.INVALID_PARAM, "refresh_token must be a string")
    raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown refresh token: this server issues none")


async def login(request: Request) -> Response:
    """POST /_matrix/client/v3/login"""
    body = await read_json(request)
    return json_response(await services(request).accounts.login(body, client_ip(request)))


async def login_challenge(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/login/challenge"""
    body = await read_json(request)
    return json_response(await services(request).accounts.create_challenge(body, client_ip(request)))


async def logout(request: Request) -> Response:
    """POST /_matrix/client/v3/logout — ends the session and deletes its device."""
    requester = await require_auth(request)
    await services(request).devices.delete(requester.user_id, [requester.device_id])
    return json_response({})


async def logout_all(request: Request) -> Response:
    """POST /_matrix/client/v3/logout/all"""
    requester = await require_auth(request)
    await services(request).devices.delete_all(requester.user_id)
    return json_response({})


async def whoami(request: Request) -> Response:
    """GET /_matrix/client/v3/account/whoami"""
    requester = await require_auth(request)
    return json_response(
        {"user_id": requester.user_id, "device_id": requester.device_id, "is_guest": False}
    )


async def set_login_key(request: Request) -> Response:
    """PUT /_matrix/client/unstable/im.parley/account/login_key"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).accounts.replace_login_key(
        requester.user_id, body.get("auth"), body.get("login_key"), client_ip(request)
    )
    return json_response({})

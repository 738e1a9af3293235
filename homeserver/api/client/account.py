"""Account management and server capabilities."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.http import access_token, client_ip, json_response, read_json, require_auth, services
from homeserver.services.room_versions import capabilities as room_version_capabilities


async def change_password(request: Request) -> Response:
    """POST /_matrix/client/v3/account/password

    With an access token: a change, re-authenticated by the account's password.
    Without one: a reset, authenticated by ``m.login.email.identity`` (spec,
    "Password management": "This API endpoint uses the User-Interactive
    Authentication API. An access token should be submitted ... if the client
    has an active session")."""
    if access_token(request) is None:
        body = await read_json(request)
        await services(request).password_reset.reset(body, client_ip(request))
        return json_response({})
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).account_admin.change_password(
        requester.user_id, requester.device_id, body, client_ip(request)
    )
    return json_response({})


async def password_email_request_token(request: Request) -> Response:
    """POST /_matrix/client/v3/account/password/email/requestToken (no token: the password is forgotten)"""
    body = await read_json(request)
    result = await services(request).password_reset.request_token(
        body.get("email"), body.get("client_secret"), client_ip(request)
    )
    config = request.app.state.hs.config
    result["submit_url"] = f"{config.base_url}/_matrix/client/unstable/im.parley/email/submitToken"
    return json_response(result)


async def msisdn_request_token(request: Request) -> Response:
    """POST /_matrix/client/v3/{register,account/password,account/3pid}/msisdn/requestToken

    Parley verifies e-mail addresses only: no text messages are sent."""
    await read_json(request)
    raise MatrixError(400, Codes.THREEPID_MEDIUM_NOT_SUPPORTED, "Phone numbers are not supported: use an e-mail address")


async def deactivate(request: Request) -> Response:
    """POST /_matrix/client/v3/account/deactivate"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    return json_response(
        await services(request).account_admin.deactivate(requester.user_id, body, client_ip(request))
    )


async def turn_server(request: Request) -> Response:
    """GET /_matrix/client/v3/voip/turnServer: no TURN server is configured (an empty answer, as the spec allows)."""
    await require_auth(request)
    return json_response({})


async def capabilities(request: Request) -> Response:
    """GET /_matrix/client/v3/capabilities"""
    await require_auth(request)
    default = request.app.state.hs.config.rooms.default_version
    return json_response({"capabilities": {
        "m.change_password": {"enabled": True},
        "m.room_versions": room_version_capabilities(default),
        "m.set_displayname": {"enabled": True},
        "m.set_avatar_url": {"enabled": True},
        "m.3pid_changes": {"enabled": False},
        "m.get_login_token": {"enabled": False},
    }})

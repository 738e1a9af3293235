"""Account management and server capabilities."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import client_ip, json_response, read_json, require_auth, services
from homeserver.services.room_versions import capabilities as room_version_capabilities


async def change_password(request: Request) -> Response:
    """POST /_matrix/client/v3/account/password"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).account_admin.change_password(
        requester.user_id, requester.device_id, body, client_ip(request)
    )
    return json_response({})


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


async def thirdparty_protocols(request: Request) -> Response:
    """GET /_matrix/client/v3/thirdparty/protocols: no bridges (application services)."""
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

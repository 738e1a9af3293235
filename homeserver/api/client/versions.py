"""Discovery: supported versions and .well-known documents."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response

SPEC_VERSIONS = ["v1.1", "v1.2", "v1.3", "v1.4", "v1.5", "v1.6", "v1.7", "v1.8", "v1.9", "v1.10", "v1.11"]


async def versions(request: Request) -> Response:
    """GET /_matrix/client/versions"""
    return json_response(
        {"versions": SPEC_VERSIONS, "unstable_features": {"im.parley": True}}
    )


async def well_known_client(request: Request) -> Response:
    """GET /.well-known/matrix/client"""
    config = request.app.state.hs.config
    response = json_response({"m.homeserver": {"base_url": config.base_url}})
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def well_known_server(request: Request) -> Response:
    """GET /.well-known/matrix/server"""
    config = request.app.state.hs.config
    host = config.server_name if ":" in config.server_name else f"{config.server_name}:443"
    return json_response({"m.server": host})

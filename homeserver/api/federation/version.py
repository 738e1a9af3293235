"""Server discovery and version: ``/federation/v1/version``, ``/.well-known/matrix/server``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver import __version__
from homeserver.api.http import json_response
from homeserver.federation.discovery import split_host_port


async def version(request: Request) -> Response:
    """GET /_matrix/federation/v1/version"""
    return json_response({"server": {"name": "Parley", "version": __version__}})


async def well_known_server(request: Request) -> Response:
    """GET /.well-known/matrix/server: where other servers reach this one.

    ``[federation] well_known_server`` when set; else this server's name with the
    federation listener's port; 404 without a federation listener (the spec's
    "no delegation": others then try port 8448 of the server name).
    """
    config = request.app.state.hs.config
    fed = config.federation
    if not fed.enabled:
        raise MatrixError(404, Codes.NOT_FOUND, "This server does not federate")
    if fed.well_known_server:
        return json_response({"m.server": fed.well_known_server})
    if not fed.listener:
        raise MatrixError(404, Codes.NOT_FOUND, "No delegation: use port 8448 of the server name")
    host, _ = split_host_port(config.server_name)
    port = fed.listener.rsplit(":", 1)[1]
    host = f"[{host}]" if ":" in host else host
    return json_response({"m.server": f"{host}:{port}"})

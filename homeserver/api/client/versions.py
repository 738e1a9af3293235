"""Discovery: supported versions and .well-known documents."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.http import json_response
from homeserver.api.spec_versions import supported_versions

# Unstable features (spec: "unstable_features ... Experimental features the server
# supports"): Parley's own API under /_matrix/client/unstable/im.parley/...
UNSTABLE_FEATURES = {"im.parley": True}


async def versions(request: Request) -> Response:
    """GET /_matrix/client/versions: only the versions whose endpoints are all served"""
    state = request.app.state
    claimed = getattr(state, "spec_versions", None)
    if claimed is None:
        claimed = state.spec_versions = supported_versions(request.app.routes)
    return json_response({"versions": claimed, "unstable_features": UNSTABLE_FEATURES})


async def well_known_support(request: Request) -> Response:
    """GET /.well-known/matrix/support (404 when the operator configured no contact)"""
    admin = request.app.state.hs.config.admin
    contact: dict[str, str] = {}
    if admin.support_email:
        contact["email_address"] = admin.support_email
    if admin.support_matrix_id:
        contact["matrix_id"] = admin.support_matrix_id
    body: dict[str, object] = {}
    if contact:
        body["contacts"] = [{**contact, "role": "m.role.admin"}]
    if admin.support_page:
        body["support_page"] = admin.support_page
    if not body:
        raise MatrixError(404, Codes.NOT_FOUND, "No server support information is configured")
    response = json_response(body)
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


async def well_known_client(request: Request) -> Response:
    """GET /.well-known/matrix/client"""
    config = request.app.state.hs.config
    response = json_response({"m.homeserver": {"base_url": config.base_url}})
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


"""Cross-signing uploads (the keys are read through /keys/query)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import client_ip, json_response, read_json, require_auth, services


async def upload_device_signing(request: Request) -> Response:
    """POST /_matrix/client/v3/keys/device_signing/upload"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).cross_signing.upload(requester.user_id, body, client_ip(request))
    return json_response({})


async def upload_signatures(request: Request) -> Response:
    """POST /_matrix/client/v3/keys/signatures/upload"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).cross_signing.upload_signatures(requester.user_id, body))

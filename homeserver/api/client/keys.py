"""End-to-end keys: upload, query, claim, changes (see ``services/keys.py`` for the shapes)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.http import json_response, read_json, require_auth, services


async def upload_keys(request: Request) -> Response:
    """POST /_matrix/client/v3/keys/upload"""
    requester = await require_auth(request)
    body = await read_json(request)
    result = await services(request).keys.upload(requester.user_id, requester.device_id, body)
    return json_response(result)


async def upload_keys_for_device(request: Request) -> Response:
    """POST /_matrix/client/r0/keys/upload/{deviceId} (legacy; only the requester's own device)"""
    requester = await require_auth(request)
    if str(request.path_params["device_id"]) != requester.device_id:
        raise MatrixError(400, Codes.INVALID_PARAM, "Can only upload keys for the current device")
    body = await read_json(request)
    result = await services(request).keys.upload(requester.user_id, requester.device_id, body)
    return json_response(result)


async def query_keys(request: Request) -> Response:
    """POST /_matrix/client/v3/keys/query"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).keys.query(requester.user_id, body))


async def claim_keys(request: Request) -> Response:
    """POST /_matrix/client/v3/keys/claim"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).keys.claim(requester.user_id, body))


async def key_changes(request: Request) -> Response:
    """GET /_matrix/client/v3/keys/changes?from=&to="""
    requester = await require_auth(request)
    start = request.query_params.get("from")
    end = request.query_params.get("to")
    if not start or not end:
        raise MatrixError(400, Codes.MISSING_PARAM, "from and to are required")
    return json_response(await services(request).keys.changes(requester.user_id, start, end))

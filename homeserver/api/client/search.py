"""Server-side search of room events (``POST /search``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, read_json, require_auth, services


async def search(request: Request) -> Response:
    """POST /_matrix/client/v3/search"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).search.search(
        requester.user_id, requester.device_id, body, request.query_params.get("next_batch")
    ))

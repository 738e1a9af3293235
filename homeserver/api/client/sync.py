"""GET /sync (long-poll)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.client.messages import int_param
from homeserver.api.http import json_response, require_auth, services


async def sync(request: Request) -> Response:
    """GET /_matrix/client/v3/sync"""
    # The token from memory: the sync confirms it against the auth counter it reads with
    # the stream positions, before it builds anything.
    requester = await require_auth(request, remembered=True)
    tokens = services(request).tokens

    async def confirm(counter: int) -> None:
        await tokens.confirm(requester, counter, request.method, request.url.path)

    query = request.query_params
    full_state_raw = query.get("full_state", "false")
    if full_state_raw not in ("true", "false"):
        raise MatrixError(400, Codes.INVALID_PARAM, "full_state must be true or false")
    body = await services(request).sync.sync(
        requester.user_id, requester.device_id, query.get("since") or None, int_param(request, "timeout", 0),
        query.get("filter"), full_state_raw == "true", query.get("set_presence"), confirm=confirm,
    )
    return json_response(body)

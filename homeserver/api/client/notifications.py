"""GET /notifications."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.client.messages import int_param
from homeserver.api.http import json_response, require_auth, services


async def notifications(request: Request) -> Response:
    """GET /_matrix/client/v3/notifications"""
    requester = await require_auth(request)
    query = request.query_params
    limit = int_param(request, "limit", 0) or None
    return json_response(await services(request).notifications.list(
        requester.user_id, query.get("from"), limit, query.get("only")
    ))

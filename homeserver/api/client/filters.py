"""Sync filters."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from common.identifiers import parse_user_id
from homeserver.api.http import json_response, path_param, read_json, require_auth, services


def _own_user(request: Request, requester_id: str, verb: str) -> str:
    user_id = path_param(request, "user_id")
    parse_user_id(user_id)
    if user_id != requester_id:
        raise MatrixError(403, Codes.FORBIDDEN, f"Cannot {verb} filters for other users")
    return user_id


async def create_filter(request: Request) -> Response:
    """POST /_matrix/client/v3/user/{userId}/filter"""
    requester = await require_auth(request)
    user_id = _own_user(request, requester.user_id, "create")
    body = await read_json(request)
    filter_id = await services(request).filters.create(user_id, body)
    return json_response({"filter_id": filter_id})


async def get_filter(request: Request) -> Response:
    """GET /_matrix/client/v3/user/{userId}/filter/{filterId}"""
    requester = await require_auth(request)
    user_id = _own_user(request, requester.user_id, "get")
    found = await services(request).filters.get(user_id, path_param(request, "filter_id"))
    if found is None:
        raise MatrixError(404, Codes.NOT_FOUND, "No such filter")
    return json_response(found)

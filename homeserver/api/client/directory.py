"""Finding people: e-mail lookup, user directory search, contacts."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, read_json, require_auth, services


async def lookup_email(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/lookup/email"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(
        await services(request).directory.lookup_email(requester.user_id, body.get("email"))
    )


async def search(request: Request) -> Response:
    """POST /_matrix/client/v3/user_directory/search"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).directory.search(requester.user_id, body))


async def contacts(request: Request) -> Response:
    """GET /_matrix/client/unstable/im.parley/contacts"""
    requester = await require_auth(request)
    return json_response(await services(request).directory.contacts(requester.user_id))

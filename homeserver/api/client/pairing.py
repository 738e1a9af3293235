"""Device pairing (unstable, see ``services/pairing.py`` for the flow)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import client_ip, json_response, read_json, require_auth, services


async def start(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/pairing/start"""
    body = await read_json(request, allow_empty=True)
    return json_response(await services(request).pairing.start(client_ip(request), body))


async def claim(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/pairing/claim"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(
        await services(request).pairing.claim(
            requester.user_id, requester.device_id, client_ip(request), body
        )
    )


async def send(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/pairing/send"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(
        await services(request).pairing.send(requester.user_id, requester.device_id, body)
    )


async def poll(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/pairing/poll"""
    body = await read_json(request)
    return json_response(await services(request).pairing.poll(client_ip(request), body))

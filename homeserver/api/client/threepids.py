"""An account's third-party identifiers and their bindings at identity servers."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import client_ip, json_response, read_json, require_auth, services


async def list_threepids(request: Request) -> Response:
    """GET /_matrix/client/v3/account/3pid"""
    requester = await require_auth(request)
    return json_response(await services(request).threepids.list(requester.user_id))


async def email_request_token(request: Request) -> Response:
    """POST /_matrix/client/v3/account/3pid/email/requestToken (spec: "Requires authentication: No";
    rate-limited like registration's, and adding the address needs UIA anyway)"""
    body = await read_json(request)
    result = await services(request).accounts.request_email_code(
        body.get("email"), body.get("client_secret"), client_ip(request)
    )
    config = request.app.state.hs.config
    result["submit_url"] = f"{config.base_url}/_matrix/client/unstable/im.parley/email/submitToken"
    return json_response(result)


async def add(request: Request) -> Response:
    """POST /_matrix/client/v3/account/3pid/add"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).threepids.add(requester.user_id, body, client_ip(request))
    return json_response({})


async def delete(request: Request) -> Response:
    """POST /_matrix/client/v3/account/3pid/delete"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).threepids.delete(requester.user_id, body))


async def add_via_identity_server(request: Request) -> Response:
    """POST /_matrix/client/v3/account/3pid (deprecated): credentials validated by an
    identity server, which Parley does not accept; ``/account/3pid/add`` does it here."""
    await require_auth(request)
    await read_json(request)
    services(request).threepids.refuse_identity_server_add()
    return json_response({})


async def bind(request: Request) -> Response:
    """POST /_matrix/client/v3/account/3pid/bind"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).threepids.bind(requester.user_id, body)
    return json_response({})


async def unbind(request: Request) -> Response:
    """POST /_matrix/client/v3/account/3pid/unbind"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).threepids.unbind(requester.user_id, body))

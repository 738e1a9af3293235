"""Registration and e-mail verification."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from common.errors import Codes, MatrixError
from homeserver.api.http import client_ip, json_response, read_json, services


async def register(request: Request) -> Response:
    """POST /_matrix/client/v3/register"""
    kind = request.query_params.get("kind", "user")
    if kind == "guest":
        body = await read_json(request, allow_empty=True)
        return json_response(await services(request).accounts.register_guest(body, client_ip(request)))
    if kind != "user":
        raise MatrixError(400, Codes.INVALID_PARAM, "kind must be user or guest")
    body = await read_json(request)
    return json_response(await services(request).accounts.register(body, client_ip(request)))


async def available(request: Request) -> Response:
    """GET /_matrix/client/v3/register/available"""
    await services(request).accounts.username_available(
        request.query_params.get("username"), client_ip(request)
    )
    return json_response({"available": True})


async def email_request_token(request: Request) -> Response:
    """POST /_matrix/client/v3/register/email/requestToken"""
    body = await read_json(request)
    result = await services(request).accounts.request_email_code(
        body.get("email"), body.get("client_secret"), client_ip(request)
    )
    config = request.app.state.hs.config
    result["submit_url"] = f"{config.base_url}/_matrix/client/unstable/im.parley/email/submitToken"
    return json_response(result)


async def email_submit_link(request: Request) -> Response:
    """GET /_matrix/client/unstable/im.parley/email/submitToken?sid=&client_secret=&token=

    The link in the verification mail; the page tells the person to go back to their app."""
    query = request.query_params
    await services(request).accounts.submit_email_code(query.get("sid"), query.get("client_secret"),
                                                       query.get("token"))
    return PlainTextResponse("Your e-mail address is verified. You can go back to your Matrix app now.\n")


async def email_submit_token(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/email/submitToken"""
    body = await read_json(request)
    await services(request).accounts.submit_email_code(
        body.get("sid"), body.get("client_secret"), body.get("token")
    )
    return json_response({"success": True})

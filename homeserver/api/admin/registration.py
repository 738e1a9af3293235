"""Shared-secret registration, registration tokens and the server version."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

import homeserver
from homeserver.api.admin.auth import admin, param, require_admin
from homeserver.api.http import client_ip, json_response, read_json


async def register_nonce(request: Request) -> Response:
    """GET /_synapse/admin/v1/register"""
    return json_response(await admin(request).registration.nonce(client_ip(request)))


async def register(request: Request) -> Response:
    """POST /_synapse/admin/v1/register"""
    body = await read_json(request)
    return json_response(await admin(request).registration.register(body, client_ip(request)))


async def server_version(request: Request) -> Response:
    """GET /_synapse/admin/v1/server_version"""
    return json_response({"server_version": f"Parley {homeserver.__version__}"})


async def list_tokens(request: Request) -> Response:
    """GET /_synapse/admin/v1/registration_tokens"""
    await require_admin(request)
    return json_response(await admin(request).tokens.list(request.query_params.get("valid")))


async def get_token(request: Request) -> Response:
    """GET /_synapse/admin/v1/registration_tokens/{token}"""
    await require_admin(request)
    return json_response((await admin(request).tokens.get(param(request, "token"))).to_json())


async def new_token(request: Request) -> Response:
    """POST /_synapse/admin/v1/registration_tokens/new"""
    await require_admin(request)
    return json_response(await admin(request).tokens.create(await read_json(request, allow_empty=True)))


async def update_token(request: Request) -> Response:
    """PUT /_synapse/admin/v1/registration_tokens/{token}"""
    await require_admin(request)
    body = await read_json(request, allow_empty=True)
    return json_response(await admin(request).tokens.update(param(request, "token"), body))


async def delete_token(request: Request) -> Response:
    """DELETE /_synapse/admin/v1/registration_tokens/{token}"""
    await require_admin(request)
    await admin(request).tokens.delete(param(request, "token"))
    return json_response({})


async def token_validity(request: Request) -> Response:
    """GET /_matrix/client/v1/register/m.login.registration_token/validity"""
    valid = await admin(request).tokens.validity(request.query_params.get("token"))
    return json_response({"valid": valid})

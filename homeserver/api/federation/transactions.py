"""Transactions: ``PUT /_matrix/federation/v1/send/{txnId}``."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.federation.auth import authenticate, federation
from homeserver.api.http import json_response, path_param, read_json


async def send_transaction(request: Request) -> Response:
    """PUT /_matrix/federation/v1/send/{txnId}"""
    origin = await authenticate(request)
    body = await read_json(request)
    fed = federation(request)
    await fed.sender.remote_contacted_us(origin)
    return json_response(await fed.transactions.receive(origin, path_param(request, "txn_id"), body))

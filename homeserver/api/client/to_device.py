"""PUT /sendToDevice."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, read_json, require_auth, services
from homeserver.services.messages import check_txn_id
from homeserver.services.rooms import check_event_type


async def send_to_device(request: Request) -> Response:
    """PUT /_matrix/client/v3/sendToDevice/{eventType}/{txnId}"""
    requester = await require_auth(request)
    event_type = check_event_type(str(request.path_params["event_type"]))
    txn_id = check_txn_id(str(request.path_params["txn_id"]))
    body = await read_json(request)
    await services(request).to_device.send(
        requester.user_id, requester.device_id, event_type, txn_id, body.get("messages")
    )
    return json_response({})

"""Invites from other servers: ``PUT /_matrix/federation/v2/invite`` (and the v1 form, whose body is
the event itself and whose answer is wrapped as ``[200, answer]``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.federation.auth import authenticate
from homeserver.api.federation.rooms import rooms
from homeserver.api.http import json_response, read_json


async def invite(request: Request) -> Response:
    """PUT /_matrix/federation/v2/invite/{roomId}/{eventId}"""
    origin = await authenticate(request)
    body = await read_json(request)
    answer = await rooms(request).invites.on_invite(origin, str(request.path_params["room_id"]),
                                                    str(request.path_params["event_id"]), body)
    return json_response(answer)


async def invite_v1(request: Request) -> Response:
    """PUT /_matrix/federation/v1/invite/{roomId}/{eventId}"""
    origin = await authenticate(request)
    event = await read_json(request)
    body = {"room_version": "1", "event": event,
            "invite_room_state": (event.get("unsigned") or {}).get("invite_room_state", [])}
    answer = await rooms(request).invites.on_invite(origin, str(request.path_params["room_id"]),
                                                    str(request.path_params["event_id"]), body)
    return json_response([200, answer])

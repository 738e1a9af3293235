"""Joining, leaving and knocking through this server: ``make_join``/``send_join``,
``make_leave``/``send_leave``, ``make_knock``/``send_knock`` (v1 answers of ``send_join`` and
``send_leave`` are the v2 answer wrapped as ``[200, answer]``, as the spec's deprecated forms)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.federation.auth import authenticate
from homeserver.api.federation.rooms import rooms
from homeserver.api.http import json_response, read_json


async def _make(request: Request, membership: str) -> Response:
    origin = await authenticate(request)
    versions = request.query_params.getlist("ver") if membership != "leave" else None
    if membership == "join" and not versions:
        versions = ["1"]  # the spec's default when the server names none
    answer = await rooms(request).resident.make(origin, str(request.path_params["room_id"]),
                                                str(request.path_params["user_id"]), membership, versions)
    return json_response(answer)


async def _send(request: Request, membership: str, wrapped: bool = False) -> Response:
    origin = await authenticate(request)
    body = await read_json(request)
    answer = await rooms(request).resident.send(origin, str(request.path_params["room_id"]),
                                                str(request.path_params["event_id"]), body, membership)
    return json_response([200, answer] if wrapped else answer)


async def make_join(request: Request) -> Response:
    """GET /_matrix/federation/v1/make_join/{roomId}/{userId}"""
    return await _make(request, "join")


async def send_join(request: Request) -> Response:
    """PUT /_matrix/federation/v2/send_join/{roomId}/{eventId}"""
    return await _send(request, "join")


async def send_join_v1(request: Request) -> Response:
    """PUT /_matrix/federation/v1/send_join/{roomId}/{eventId}"""
    return await _send(request, "join", wrapped=True)


async def make_leave(request: Request) -> Response:
    """GET /_matrix/federation/v1/make_leave/{roomId}/{userId}"""
    return await _make(request, "leave")


async def send_leave(request: Request) -> Response:
    """PUT /_matrix/federation/v2/send_leave/{roomId}/{eventId}"""
    return await _send(request, "leave")


async def send_leave_v1(request: Request) -> Response:
    """PUT /_matrix/federation/v1/send_leave/{roomId}/{eventId}"""
    return await _send(request, "leave", wrapped=True)


async def make_knock(request: Request) -> Response:
    """GET /_matrix/federation/v1/make_knock/{roomId}/{userId}"""
    return await _make(request, "knock")


async def send_knock(request: Request) -> Response:
    """PUT /_matrix/federation/v1/send_knock/{roomId}/{eventId}"""
    return await _send(request, "knock")

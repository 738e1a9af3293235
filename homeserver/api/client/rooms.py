"""Rooms: creation, membership, state and member lists."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from common.identifiers import parse_room_id, parse_user_id
from homeserver.api.http import json_response, read_json, require_auth, services


def room_id_param(request: Request) -> str:
    room_id = str(request.path_params["room_id"])
    parse_room_id(room_id)
    return room_id


async def create_room(request: Request) -> Response:
    """POST /_matrix/client/v3/createRoom"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    invite_3pid = body.pop("invite_3pid", None)
    if invite_3pid is not None and (not isinstance(invite_3pid, list) or len(invite_3pid) > 100
                                    or not all(isinstance(i, dict) for i in invite_3pid)):
        raise MatrixError(400, Codes.BAD_JSON, "invite_3pid must be a list of at most 100 objects")
    if invite_3pid:
        # Checked before the room exists, so that a bad entry creates nothing.
        for entry in invite_3pid:
            services(request).third_party_invites.check_request(entry)
    remote = _remote_invitees(request, body)
    if remote:
        body = {**body, "invite": [t for t in body["invite"] if t not in remote]}
    room_id = await services(request).rooms.create_room(requester.user_id, body)
    # Users of other servers are invited once the room exists (PUT /v2/invite to their server).
    # A direct chat's invitee of another server joins from there, not here at once.
    extra = {"is_direct": True} if body.get("is_direct") is True else None
    for target in remote:
        await services(request).membership.invite(requester.user_id, room_id, target, extra=extra)
    for entry in invite_3pid or []:
        await services(request).third_party_invites.invite(requester.user_id, room_id, entry)
    return json_response({"room_id": room_id})


def _remote_invitees(request: Request, body: dict[str, object]) -> list[str]:
    invites = body.get("invite")
    membership = services(request).membership
    if not isinstance(invites, list) or len(invites) > 100 or membership.remote is None:
        return []  # the room service refuses what is malformed
    ours = ":" + services(request).rooms.server_name
    remote: list[str] = []
    for target in invites:
        if isinstance(target, str) and target.startswith("@") and not target.endswith(ours):
            parse_user_id(target)
            if target not in remote:
                remote.append(target)
    return remote


async def joined_rooms(request: Request) -> Response:
    """GET /_matrix/client/v3/joined_rooms"""
    requester = await require_auth(request)
    return json_response({"joined_rooms": await services(request).rooms.joined_rooms(requester.user_id)})


async def invite(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/invite"""
    requester = await require_auth(request)
    body = await read_json(request)
    if "user_id" not in body and ("id_server" in body or "medium" in body or "address" in body):
        await services(request).third_party_invites.invite(requester.user_id, room_id_param(request), body)
        return json_response({})
    if "user_id" not in body:
        raise MatrixError(400, Codes.MISSING_PARAM, "user_id is required")
    await services(request).membership.invite(
        requester.user_id, room_id_param(request), body.get("user_id"), body.get("reason")
    )
    return json_response({})


# Request fields that are not member content (or that only the server may set).
_NOT_MEMBER_CONTENT = ("membership", "third_party_signed", "join_authorised_via_users_server")


def _member_extra(body: dict[str, Any]) -> dict[str, Any]:
    """What a join request adds to the member event: ``reason`` (spec) and any other
    content fields the client gives (Synapse keeps them too; a per-room ``displayname``
    overrides the profile's), never ``membership`` or the fields only servers set."""
    extra = {k: v for k, v in body.items() if k not in _NOT_MEMBER_CONTENT}
    if "reason" in extra and not isinstance(extra["reason"], str):
        raise MatrixError(400, Codes.INVALID_PARAM, "reason must be a string")
    return extra


async def join_room_id(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/join"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    if requester.is_guest:
        await services(request).room_directory.check_guest_join(room_id_param(request))
    if "third_party_signed" in body:
        await services(request).third_party_invites.join(
            requester.user_id, room_id_param(request), body["third_party_signed"])
    room_id = await services(request).membership.join(requester.user_id, room_id_param(request),
                                                      request.query_params.getlist("via"), _member_extra(body))
    return json_response({"room_id": room_id})


async def join(request: Request) -> Response:
    """POST /_matrix/client/v3/join/{roomIdOrAlias}"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    target = str(request.path_params["room_id_or_alias"])
    if not target.startswith("#"):
        parse_room_id(target)
    if requester.is_guest:
        await services(request).room_directory.check_guest_join(target)
    if "third_party_signed" in body:
        if target.startswith("#"):
            target = await services(request).room_directory.room_id_for(target)
        await services(request).third_party_invites.join(requester.user_id, target, body["third_party_signed"])
    servers = [*request.query_params.getlist("server_name"), *request.query_params.getlist("via")]
    room_id = await services(request).membership.join(requester.user_id, target, servers, _member_extra(body))
    return json_response({"room_id": room_id})


async def third_party_onbind(request: Request) -> Response:
    """POST /_matrix/federation/v1/3pid/onbind (called by an identity server; the
    invites carry its signatures, checked against the rooms' published keys)"""
    body = await read_json(request)
    await services(request).third_party_invites.on_bind(body)
    return json_response({})


async def leave(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/leave"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    await services(request).membership.leave(requester.user_id, room_id_param(request), body.get("reason"))
    return json_response({})


async def forget(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/forget"""
    requester = await require_auth(request)
    await read_json(request, allow_empty=True)
    await services(request).membership.forget(requester.user_id, room_id_param(request))
    return json_response({})


async def kick(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/kick"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).membership.kick(
        requester.user_id, room_id_param(request), body.get("user_id"), body.get("reason")
    )
    return json_response({})


async def ban(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/ban"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).membership.ban(
        requester.user_id, room_id_param(request), body.get("user_id"), body.get("reason")
    )
    return json_response({})


async def unban(request: Request) -> Response:
    """POST /_matrix/client/v3/rooms/{roomId}/unban"""
    requester = await require_auth(request)
    body = await read_json(request)
    await services(request).membership.unban(
        requester.user_id, room_id_param(request), body.get("user_id"), body.get("reason")
    )
    return json_response({})


async def destroy(request: Request) -> Response:
    """POST /_matrix/client/unstable/im.parley/rooms/{roomId}/destroy"""
    requester = await require_auth(request)
    await read_json(request, allow_empty=True)
    await services(request).membership.destroy(requester.user_id, room_id_param(request))
    return json_response({})


async def get_state(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/state"""
    requester = await require_auth(request)
    return json_response(await services(request).rooms.get_state(requester.user_id, room_id_param(request)))


def _state_key(request: Request) -> str:
    return str(request.path_params.get("state_key", ""))


async def get_state_event(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}?format=content|event"""
    requester = await require_auth(request)
    fmt = request.query_params.get("format", "content")
    if fmt not in ("content", "event"):
        raise MatrixError(400, Codes.INVALID_PARAM, "format must be content or event")
    rooms = services(request).rooms
    fetch = rooms.get_state_event_formatted if fmt == "event" else rooms.get_state_event
    return json_response(await fetch(
        requester.user_id, room_id_param(request), str(request.path_params["event_type"]), _state_key(request)
    ))


async def put_state_event(request: Request) -> Response:
    """PUT /_matrix/client/v3/rooms/{roomId}/state/{eventType}/{stateKey}"""
    requester = await require_auth(request)
    content = await read_json(request)
    event_id = await services(request).rooms.put_state(
        requester.user_id, requester.device_id, room_id_param(request),
        str(request.path_params["event_type"]), _state_key(request), content,
    )
    return json_response({"event_id": event_id})


async def members(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/members"""
    requester = await require_auth(request)
    membership = request.query_params.get("membership")
    not_membership = request.query_params.get("not_membership")
    for value in (membership, not_membership):
        if value is not None and value not in ("join", "invite", "leave", "ban", "knock"):
            raise MatrixError(400, Codes.INVALID_PARAM, "Unknown membership")
    chunk = await services(request).rooms.members(
        requester.user_id, room_id_param(request), membership, not_membership
    )
    return json_response({"chunk": chunk})


async def joined_members(request: Request) -> Response:
    """GET /_matrix/client/v3/rooms/{roomId}/joined_members"""
    requester = await require_auth(request)
    joined = await services(request).rooms.joined_members(requester.user_id, room_id_param(request))
    return json_response({"joined": joined})

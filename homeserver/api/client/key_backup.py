"""Server-side room key backup (``/room_keys``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.http import json_response, read_json, require_auth, services


def _room(request: Request) -> str | None:
    value = request.path_params.get("room_id")
    return None if value is None else str(value)


def _session(request: Request) -> str | None:
    value = request.path_params.get("session_id")
    return None if value is None else str(value)


async def create_version(request: Request) -> Response:
    """POST /_matrix/client/v3/room_keys/version"""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(await services(request).key_backup.create_version(requester.user_id, body))


async def get_current_version(request: Request) -> Response:
    """GET /_matrix/client/v3/room_keys/version"""
    requester = await require_auth(request)
    return json_response(await services(request).key_backup.get_version(requester.user_id, None))


async def get_version(request: Request) -> Response:
    """GET /_matrix/client/v3/room_keys/version/{version}"""
    requester = await require_auth(request)
    version = str(request.path_params["version"])
    return json_response(await services(request).key_backup.get_version(requester.user_id, version))


async def update_version(request: Request) -> Response:
    """PUT /_matrix/client/v3/room_keys/version/{version}"""
    requester = await require_auth(request)
    body = await read_json(request)
    version = str(request.path_params["version"])
    return json_response(
        await services(request).key_backup.update_version(requester.user_id, version, body)
    )


async def delete_version(request: Request) -> Response:
    """DELETE /_matrix/client/v3/room_keys/version/{version}"""
    requester = await require_auth(request)
    version = str(request.path_params["version"])
    return json_response(await services(request).key_backup.delete_version(requester.user_id, version))


async def put_keys(request: Request) -> Response:
    """PUT /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]?version="""
    requester = await require_auth(request)
    body = await read_json(request)
    return json_response(
        await services(request).key_backup.put_keys(
            requester.user_id, request.query_params.get("version"), body,
            _room(request), _session(request),
        )
    )


async def get_keys(request: Request) -> Response:
    """GET /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]?version="""
    requester = await require_auth(request)
    return json_response(
        await services(request).key_backup.get_keys(
            requester.user_id, request.query_params.get("version"), _room(request), _session(request)
        )
    )


async def delete_keys(request: Request) -> Response:
    """DELETE /_matrix/client/v3/room_keys/keys[/{roomId}[/{sessionId}]]?version="""
    requester = await require_auth(request)
    return json_response(
        await services(request).key_backup.delete_keys(
            requester.user_id, request.query_params.get("version"), _room(request), _session(request)
        )
    )

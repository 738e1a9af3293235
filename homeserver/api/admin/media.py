"""Admin API: media (``/_synapse/admin/v1/media...``, ``/users/{userId}/media``)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from homeserver.api.admin.auth import admin, param, require_admin
from homeserver.api.http import json_response


async def user_media(request: Request) -> Response:
    """GET /_synapse/admin/v1/users/{userId}/media"""
    await require_admin(request)
    user_id = param(request, "user_id")
    await admin(request).users.existing(user_id)
    return json_response(await admin(request).media.list_for_user(user_id, request.query_params))


async def quarantine(request: Request) -> Response:
    """POST /_synapse/admin/v1/media/quarantine/{serverName}/{mediaId}"""
    requester = await require_admin(request)
    await admin(request).media.quarantine(requester.user_id, param(request, "server_name"),
                                          param(request, "media_id"))
    return json_response({})


async def unquarantine(request: Request) -> Response:
    """POST /_synapse/admin/v1/media/unquarantine/{serverName}/{mediaId}"""
    requester = await require_admin(request)
    await admin(request).media.unquarantine(requester.user_id, param(request, "server_name"),
                                            param(request, "media_id"))
    return json_response({})


async def quarantine_user(request: Request) -> Response:
    """POST /_synapse/admin/v1/user/{userId}/media/quarantine"""
    requester = await require_admin(request)
    user_id = param(request, "user_id")
    await admin(request).users.existing(user_id)
    return json_response(await admin(request).media.quarantine_user(requester.user_id, user_id))


async def delete_media(request: Request) -> Response:
    """DELETE /_synapse/admin/v1/media/{serverName}/{mediaId}"""
    requester = await require_admin(request)
    return json_response(await admin(request).media.delete(
        requester.user_id, param(request, "server_name"), param(request, "media_id")))


async def delete_older(request: Request) -> Response:
    """POST /_synapse/admin/v1/media/delete?before_ts=..."""
    requester = await require_admin(request)
    return json_response(await admin(request).media.delete_older(requester.user_id, request.query_params))


async def media_statistics(request: Request) -> Response:
    """GET /_synapse/admin/v1/statistics/users/media"""
    await require_admin(request)
    return json_response(await admin(request).media.statistics(request.query_params))


async def delete_user_media(request: Request) -> Response:
    """DELETE /_synapse/admin/v1/users/{userId}/media"""
    requester = await require_admin(request)
    user_id = param(request, "user_id")
    await admin(request).users.existing(user_id)
    return json_response(await admin(request).media.delete_of_user(requester.user_id, user_id))

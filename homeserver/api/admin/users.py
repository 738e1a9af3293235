"""Admin API: accounts (``/_synapse/admin/v1|v2/users...``, deactivate, reset_password, whois)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import bad_param
from homeserver.api.admin.auth import admin, param, require_admin
from homeserver.api.http import json_response, read_json, require_auth


async def list_users(request: Request) -> Response:
    """GET /_synapse/admin/v2/users"""
    await require_admin(request)
    return json_response(await admin(request).users.list_users(request.query_params))


async def get_user(request: Request) -> Response:
    """GET /_synapse/admin/v2/users/{userId}"""
    await require_admin(request)
    return json_response(await admin(request).users.get_user(param(request, "user_id")))


async def put_user(request: Request) -> Response:
    """PUT /_synapse/admin/v2/users/{userId}"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    user, created = await admin(request).users.put_user(requester.user_id, param(request, "user_id"), body)
    return json_response(user, status=201 if created else 200)


async def deactivate(request: Request) -> Response:
    """POST /_synapse/admin/v1/deactivate/{userId}"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    erase = body.get("erase", False)
    if not isinstance(erase, bool):
        raise bad_param("erase must be a boolean")
    await admin(request).users.deactivate(requester.user_id, param(request, "user_id"), erase)
    return json_response({"id_server_unbind_result": "success"})


async def reset_password(request: Request) -> Response:
    """POST /_synapse/admin/v1/reset_password/{userId}"""
    requester = await require_admin(request)
    body = await read_json(request)
    await admin(request).users.reset_password(requester.user_id, param(request, "user_id"), body)
    return json_response({})


async def login_as(request: Request) -> Response:
    """POST /_synapse/admin/v1/users/{userId}/login"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    return json_response(await admin(request).users.login_as(requester.user_id, param(request, "user_id"), body))


async def get_admin(request: Request) -> Response:
    """GET /_synapse/admin/v1/users/{userId}/admin"""
    await require_admin(request)
    user = await admin(request).users.get_user(param(request, "user_id"))
    return json_response({"admin": user["admin"]})


async def put_admin(request: Request) -> Response:
    """PUT /_synapse/admin/v1/users/{userId}/admin"""
    requester = await require_admin(request)
    body = await read_json(request)
    value = body.get("admin")
    if not isinstance(value, bool):
        raise bad_param("admin must be a boolean")
    await admin(request).users.set_flag(requester.user_id, param(request, "user_id"), "admin", value)
    return json_response({})


async def shadow_ban(request: Request) -> Response:
    """POST and DELETE /_synapse/admin/v1/users/{userId}/shadow_ban"""
    requester = await require_admin(request)
    await admin(request).users.set_flag(requester.user_id, param(request, "user_id"), "shadow_banned",
                                        request.method == "POST")
    return json_response({})


async def suspend(request: Request) -> Response:
    """PUT /_synapse/admin/v1/suspend/{userId}"""
    requester = await require_admin(request)
    body = await read_json(request)
    value = body.get("suspend")
    if not isinstance(value, bool):
        raise bad_param("suspend must be a boolean")
    user_id = param(request, "user_id")
    await admin(request).users.set_flag(requester.user_id, user_id, "suspended", value)
    return json_response({f"user_{user_id}_suspended": value})


async def joined_rooms(request: Request) -> Response:
    """GET /_synapse/admin/v1/users/{userId}/joined_rooms"""
    await require_admin(request)
    return json_response(await admin(request).users.joined_rooms(param(request, "user_id")))


async def list_devices(request: Request) -> Response:
    """GET /_synapse/admin/v2/users/{userId}/devices"""
    await require_admin(request)
    return json_response(await admin(request).users.list_devices(param(request, "user_id")))


async def get_device(request: Request) -> Response:
    """GET /_synapse/admin/v2/users/{userId}/devices/{deviceId}"""
    await require_admin(request)
    return json_response(
        await admin(request).users.get_device(param(request, "user_id"), param(request, "device_id"))
    )


async def put_device(request: Request) -> Response:
    """PUT /_synapse/admin/v2/users/{userId}/devices/{deviceId}"""
    await require_admin(request)
    body = await read_json(request, allow_empty=True)
    await admin(request).users.rename_device(param(request, "user_id"), param(request, "device_id"), body)
    return json_response({})


async def delete_device(request: Request) -> Response:
    """DELETE /_synapse/admin/v2/users/{userId}/devices/{deviceId}"""
    await require_admin(request)
    await admin(request).users.delete_devices(param(request, "user_id"), [param(request, "device_id")])
    return json_response({})


async def delete_devices(request: Request) -> Response:
    """POST /_synapse/admin/v2/users/{userId}/delete_devices"""
    await require_admin(request)
    body = await read_json(request)
    await admin(request).users.delete_devices(param(request, "user_id"), body.get("devices"))
    return json_response({})


async def get_ratelimit(request: Request) -> Response:
    """GET /_synapse/admin/v1/users/{userId}/override_ratelimit"""
    await require_admin(request)
    return json_response(await admin(request).users.get_override(param(request, "user_id")))


async def set_ratelimit(request: Request) -> Response:
    """POST /_synapse/admin/v1/users/{userId}/override_ratelimit"""
    requester = await require_admin(request)
    body = await read_json(request, allow_empty=True)
    return json_response(
        await admin(request).users.set_override(requester.user_id, param(request, "user_id"), body)
    )


async def delete_ratelimit(request: Request) -> Response:
    """DELETE /_synapse/admin/v1/users/{userId}/override_ratelimit"""
    await require_admin(request)
    await admin(request).users.delete_override(param(request, "user_id"))
    return json_response({})


async def whois(request: Request) -> Response:
    """GET /_synapse/admin/v1/whois/{userId}"""
    await require_admin(request)
    return json_response(await admin(request).users.whois(param(request, "user_id")))


async def client_whois(request: Request) -> Response:
    """GET /_matrix/client/v3/admin/whois/{userId} (admins, or a user about themself)"""
    requester = await require_auth(request)
    user_id = param(request, "user_id")
    if user_id != requester.user_id:
        await admin(request).users.require_admin(requester.user_id)
    return json_response(await admin(request).users.whois(user_id))


async def username_available(request: Request) -> Response:
    """GET /_synapse/admin/v1/username_available"""
    await require_admin(request)
    username = request.query_params.get("username")
    accounts = request.app.state.hs.services.accounts
    await accounts.username_available(username, None)
    return json_response({"available": True})


async def account_data(request: Request) -> Response:
    """GET /_synapse/admin/v1/users/{userId}/accountdata"""
    await require_admin(request)
    return json_response(await admin(request).users.account_data(param(request, "user_id")))


async def pushers(request: Request) -> Response:
    """GET /_synapse/admin/v1/users/{userId}/pushers (Parley has no push gateway support: always empty)"""
    await require_admin(request)
    await admin(request).users.existing(param(request, "user_id"))
    return json_response({"pushers": [], "total": 0})

"""Device management."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_device_id
from homeserver.api.http import client_ip, json_response, read_json, require_auth, services


def _device_id(request: Request) -> str:
    device_id = str(request.path_params["device_id"])
    if not is_valid_device_id(device_id):
        raise MatrixError(404, Codes.NOT_FOUND, "No such device")
    return device_id


async def list_devices(request: Request) -> Response:
    """GET /_matrix/client/v3/devices"""
    requester = await require_auth(request)
    return json_response({"devices": await services(request).devices.list_json(requester.user_id)})


async def get_device(request: Request) -> Response:
    """GET /_matrix/client/v3/devices/{deviceId}"""
    requester = await require_auth(request)
    return json_response(await services(request).devices.get(requester.user_id, _device_id(request)))


async def update_device(request: Request) -> Response:
    """PUT /_matrix/client/v3/devices/{deviceId}"""
    requester = await require_auth(request)
    body = await read_json(request, allow_empty=True)
    await services(request).devices.rename(requester.user_id, _device_id(request), body.get("display_name"))
    return json_response({})


async def delete_device(request: Request) -> Response:
    """DELETE /_matrix/client/v3/devices/{deviceId}"""
    requester = await require_auth(request)
    device_id = _device_id(request)
    body = await read_json(request, allow_empty=True)
    svc = services(request)
    await svc.devices.get(requester.user_id, device_id)  # 404 before asking for auth
    await svc.accounts.reauthenticate(
        body.get("auth"), "delete_devices", requester.user_id, client_ip(request), request=[device_id]
    )
    await svc.devices.delete(requester.user_id, [device_id])
    return json_response({})


async def delete_devices(request: Request) -> Response:
    """POST /_matrix/client/v3/delete_devices"""
    requester = await require_auth(request)
    body = await read_json(request)
    devices = body.get("devices")
    if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
        raise MatrixError(400, Codes.BAD_JSON, "devices must be a list of device ids")
    if len(devices) > 1000:
        raise MatrixError(400, Codes.INVALID_PARAM, "At most 1000 devices at once")
    svc = services(request)
    await svc.accounts.reauthenticate(
        body.get("auth"), "delete_devices", requester.user_id, client_ip(request), request=sorted(devices)
    )
    await svc.devices.delete(requester.user_id, [d for d in devices if is_valid_device_id(d)])
    return json_response({})

"""Devices: one per login, listed, renamed and deleted by their owner.

Deleting a device revokes its access tokens; other services (keys,
to-device messages) register listeners to clean up what they keep per
device.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_device_id, new_device_id
from homeserver.services.clock import Clock
from homeserver.storage.accounts import DeviceRepository
from homeserver.storage.models.accounts import Device

DeviceListener = Callable[[str, list[str]], Awaitable[None]]

MAX_DISPLAY_NAME = 100


def device_json(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "display_name": device.display_name,
        "last_seen_ip": device.last_seen_ip,
        "last_seen_ts": device.last_seen_ts,
    }


def check_display_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > MAX_DISPLAY_NAME:
        raise MatrixError(
            400, Codes.INVALID_PARAM, f"Device display name must be a string of at most {MAX_DISPLAY_NAME} characters"
        )
    return name


class DeviceService:
    def __init__(self, devices: DeviceRepository, clock: Clock) -> None:
        self.devices = devices
        self.clock = clock
        self._created_listeners: list[DeviceListener] = []
        self._deleted_listeners: list[DeviceListener] = []
        self._renamed_listeners: list[DeviceListener] = []
        self._all_deleted_listeners: list[Callable[[str], Awaitable[None]]] = []

    def on_created(self, listener: DeviceListener) -> None:
        self._created_listeners.append(listener)

    def on_renamed(self, listener: DeviceListener) -> None:
        self._renamed_listeners.append(listener)

    def on_deleted(self, listener: DeviceListener) -> None:
        self._deleted_listeners.append(listener)

    def on_all_deleted(self, listener: Callable[[str], Awaitable[None]]) -> None:
        """``listener(user_id)`` after :meth:`delete_all`: for what belongs to the user
        without a device row of its own (an admin's login-as token)."""
        self._all_deleted_listeners.append(listener)

    async def login_device(
        self, user_id: str, device_id: str | None, display_name: str | None, ip: str | None
    ) -> str:
        """Reuse the client's device id or create a fresh device; return its id."""
        if device_id is None:
            device_id = new_device_id()
        elif not isinstance(device_id, str) or not is_valid_device_id(device_id):
            raise MatrixError(400, Codes.INVALID_PARAM, "Invalid device_id")
        _, created = await self.devices.ensure(
            user_id, device_id, check_display_name(display_name), ip, self.clock.now_ms()
        )
        if created:
            for listener in self._created_listeners:
                await listener(user_id, [device_id])
        return device_id

    async def list_json(self, user_id: str) -> list[dict[str, Any]]:
        return [device_json(d) for d in await self.devices.list_for_user(user_id)]

    async def get(self, user_id: str, device_id: str) -> dict[str, Any]:
        device = await self.devices.get(user_id, device_id)
        if device is None:
            raise MatrixError(404, Codes.NOT_FOUND, "No such device")
        return device_json(device)

    async def rename(self, user_id: str, device_id: str, display_name: Any) -> None:
        name = check_display_name(display_name)
        if name is None:
            return
        if not await self.devices.rename(user_id, device_id, name):
            raise MatrixError(404, Codes.NOT_FOUND, "No such device")
        for listener in self._renamed_listeners:
            await listener(user_id, [device_id])

    async def delete(self, user_id: str, device_ids: list[str]) -> None:
        deleted = await self.devices.delete(user_id, device_ids)
        if deleted:
            for listener in self._deleted_listeners:
                await listener(user_id, deleted)

    async def delete_all(self, user_id: str) -> None:
        ids = [d.device_id for d in await self.devices.list_for_user(user_id)]
        await self.delete(user_id, ids)
        for listener in self._all_deleted_listeners:
            await listener(user_id)

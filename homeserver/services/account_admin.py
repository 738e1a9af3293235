"""Changing the password and deactivating an account (client-server API,
"Account registration and management": ``/account/password``, ``/account/deactivate``).

Both are re-authenticated with user-interactive auth.  Deactivation is for
good: the account can no longer log in, every device (and with it every
token and end-to-end key) is deleted, the user leaves every room and declines
every pending invitation, and the profile is erased.
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError
from homeserver.services.accounts import AccountService
from homeserver.services.devices import DeviceService
from homeserver.services.membership import MembershipService
from homeserver.services.passwords import MAX_PASSWORD_LENGTH, PasswordHasher
from homeserver.services.threepids import ThreepidService
from homeserver.storage.accounts import UserRepository
from homeserver.storage.profiles import ProfileRepository
from homeserver.storage.rooms import RoomRepository


def check_new_password(value: Any) -> str:
    if value is None:
        raise MatrixError(400, Codes.MISSING_PARAM, "new_password is required")
    if not isinstance(value, str) or not 8 <= len(value) <= MAX_PASSWORD_LENGTH:
        raise MatrixError(400, Codes.WEAK_PASSWORD, f"Passwords must be 8 to {MAX_PASSWORD_LENGTH} characters long")
    return value


class AccountAdminService:
    def __init__(
        self, accounts: AccountService, users: UserRepository, passwords: PasswordHasher,
        devices: DeviceService, membership: MembershipService, rooms: RoomRepository,
        profiles: ProfileRepository, threepids: ThreepidService,
    ) -> None:
        self.accounts = accounts
        self.users = users
        self.passwords = passwords
        self.devices = devices
        self.membership = membership
        self.rooms = rooms
        self.profiles = profiles
        self.threepids = threepids

    async def change_password(
        self, user_id: str, device_id: str | None, body: dict[str, Any], ip: str | None
    ) -> None:
        """POST /account/password: other devices are logged out unless ``logout_devices`` is false."""
        new_password = check_new_password(body.get("new_password"))
        logout = body.get("logout_devices", True)
        if not isinstance(logout, bool):
            raise MatrixError(400, Codes.BAD_JSON, "logout_devices must be a boolean")
        await self.accounts.reauthenticate(body.get("auth"), "change_password", user_id, ip)
        await self.users.set_password_hash(user_id, await self.passwords.hash(new_password))
        if logout:
            others = [d.device_id for d in await self.devices.devices.list_for_user(user_id)
                      if d.device_id != device_id]
            await self.devices.delete(user_id, others)

    async def deactivate(self, user_id: str, body: dict[str, Any], ip: str | None) -> dict[str, Any]:
        """POST /account/deactivate"""
        erase = body.get("erase", False)
        if not isinstance(erase, bool):
            raise MatrixError(400, Codes.BAD_JSON, "erase must be a boolean")
        await self.accounts.reauthenticate(body.get("auth"), "deactivate", user_id, ip)
        await self.users.deactivate(user_id)
        await self.devices.delete_all(user_id)
        for held in await self.rooms.memberships_of_user(user_id):
            if held.membership in ("join", "invite", "knock"):
                await self.membership.leave(user_id, held.room_id)
        # Display name and avatar go whether or not erasure was asked for (as on
        # Synapse): a deactivated account shows nothing about its owner.
        await self.profiles.delete_user(user_id)
        # Spec: "success" when every identifier bound through this server was unbound.
        return {"id_server_unbind_result": await self.threepids.unbind_all(user_id)}

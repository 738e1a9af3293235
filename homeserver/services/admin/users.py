"""Server administration of accounts (Synapse's ``/_synapse/admin`` user API).

Admins are accounts whose ``admin`` flag is set (by shared-secret
registration, the admin command line or another admin).  Every action on
behalf of another account that grants access to it (``login as``) is
written to the admin audit log.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from typing import Any

from common.errors import Codes, MatrixError, bad_param, forbidden, not_found
from common.identifiers import is_valid_localpart, normalise_email, parse_user_id
from homeserver.services.accounts import AccountService
from homeserver.services.admin.params import int_param
from homeserver.services.auth import AccountStatus, TokenService
from homeserver.services.clock import Clock
from homeserver.services.devices import DeviceService
from homeserver.services.membership import MembershipService
from homeserver.services.passwords import MAX_PASSWORD_LENGTH
from homeserver.services.profiles import ProfileService
from homeserver.storage.account_data import AccountDataRepository
from homeserver.storage.accounts import AlreadyExists
from homeserver.storage.admin_users import AdminUserRepository, AdminUserRow, UserQuery
from homeserver.storage.profiles import ProfileRepository
from homeserver.storage.rooms import RoomRepository

Json = dict[str, Any]

NOT_ADMIN = "You are not a server admin"


def user_json(row: AdminUserRow, last_seen_ts: int | None = None) -> Json:
    return {
        "name": row.user_id,
        "displayname": row.displayname,
        "avatar_url": row.avatar_url,
        "threepids": [{"medium": "email", "address": row.email}] if row.email else [],
        "is_guest": False,
        "admin": row.admin,
        "deactivated": row.deactivated,
        "erased": row.erased,
        "shadow_banned": row.shadow_banned,
        "locked": row.locked,
        "suspended": row.suspended,
        "creation_ts": row.created_ts,
        "appservice_id": None,
        "user_type": None,
        "external_ids": [],
        "last_seen_ts": last_seen_ts,
    }


def _bool(value: Any, name: str) -> bool:
    if not isinstance(value, bool):
        raise bad_param(f"{name} must be a boolean")
    return value


def check_password(value: Any) -> str:
    if not isinstance(value, str) or not 8 <= len(value) <= MAX_PASSWORD_LENGTH:
        raise MatrixError(400, Codes.WEAK_PASSWORD, "Passwords must be 8 to 512 characters long")
    return value


class AdminUserService:
    def __init__(
        self, server_name: str, repo: AdminUserRepository, accounts: AccountService, tokens: TokenService,
        devices: DeviceService, membership: MembershipService, rooms: RoomRepository,
        profiles: ProfileService, profile_repo: ProfileRepository, clock: Clock,
    ) -> None:
        self.server_name = server_name
        self.repo = repo
        self.accounts = accounts
        self.tokens = tokens
        self.devices = devices
        self.membership = membership
        self.rooms = rooms
        self.profiles = profiles
        self.profile_repo = profile_repo
        self.clock = clock
        self.account_data_repo: AccountDataRepository | None = None

    # ---------------------------------------------------------- checks
    async def require_admin(self, user_id: str) -> None:
        if not await self.repo.is_admin(user_id):
            raise forbidden(NOT_ADMIN)

    def local_user_id(self, user_id: str) -> str:
        localpart, server = parse_user_id(user_id)
        if server != self.server_name:
            raise bad_param("This endpoint can only be used with local users")
        del localpart
        return user_id

    async def existing(self, user_id: str) -> AdminUserRow:
        row = await self.repo.get(self.local_user_id(user_id))
        if row is None or row.is_placeholder:
            raise not_found("User not found")
        return row

    # ---------------------------------------------------------- reading
    async def list_users(self, params: Mapping[str, str]) -> Json:
        offset = int_param(params, "from", 0)
        limit = int_param(params, "limit", 100)
        if limit < 1 or offset < 0:
            raise bad_param("from must be >= 0 and limit >= 1")
        direction = params.get("dir", "f")
        if direction not in ("f", "b"):
            raise bad_param("dir must be 'f' or 'b'")
        query = UserQuery(
            server_name=self.server_name, offset=offset, limit=min(limit, 1000), user_id=params.get("user_id"), name=params.get("name"),
            deactivated=_bool_param(params, "deactivated", False),
            admins=_bool_param(params, "admins", None) if "admins" in params else None,
            locked=_bool_param(params, "locked", True), order_by=params.get("order_by", "name"),
            descending=direction == "b",
        )
        rows, total = await self.repo.search(query)
        body: Json = {"users": [user_json(r) for r in rows], "total": total}
        if offset + len(rows) < total:
            body["next_token"] = str(offset + len(rows))
        return body

    async def get_user(self, user_id: str) -> Json:
        row = await self.existing(user_id)
        seen = [d.last_seen_ts for d in await self.devices.devices.list_for_user(row.user_id) if d.last_seen_ts]
        return user_json(row, max(seen) if seen else None)

    # ---------------------------------------------------------- writing
    async def put_user(self, admin: str, user_id: str, body: Mapping[str, Any]) -> tuple[Json, bool]:
        """PUT /_synapse/admin/v2/users/{userId}: create or modify; the flag says "created"."""
        self.local_user_id(user_id)
        localpart = user_id[1:].split(":", 1)[0]
        row = await self.repo.get(user_id)
        created = row is None or row.is_placeholder
        password = check_password(body["password"]) if body.get("password") is not None else None
        email = _email_from_threepids(body.get("threepids"))
        if created:
            if not is_valid_localpart(localpart):
                raise MatrixError(400, Codes.INVALID_USERNAME, "Invalid user name")
            password_hash = await self.accounts.passwords.hash(password) if password else None
            if row is None:
                try:
                    await self.accounts.users.create(user_id, localpart, email, password_hash, None,
                                                     self.clock.now_ms())
                except AlreadyExists:
                    raise MatrixError(400, "M_THREEPID_IN_USE", "That e-mail address is in use") from None
            else:
                raise MatrixError(400, Codes.USER_IN_USE, "That user id is reserved")
        elif password is not None:
            await self.accounts.users.set_password_hash(user_id, await self.accounts.passwords.hash(password))
            if body.get("logout_devices", True):
                await self.devices.delete_all(user_id)
        for flag in ("admin", "locked", "suspended"):
            if flag in body:
                await self.repo.set_flag(user_id, flag, _bool(body[flag], flag))
        for field in ("displayname", "avatar_url"):
            if field in body:
                await self.profiles.set_field(user_id, user_id, field, {field: body[field]})
        if "deactivated" in body:
            if _bool(body["deactivated"], "deactivated"):
                await self.deactivate(admin, user_id, erase=False)
            elif not created and row is not None and row.deactivated:
                if password is None:
                    raise bad_param("A password is needed to reactivate an account")
                await self.repo.set_flag(user_id, "deactivated", False)
        await self.repo.audit(admin, "create_user" if created else "modify_user", user_id,
                              {k: v for k, v in body.items() if k != "password"}, self.clock.now_ms())
        return await self.get_user(user_id), created

    async def deactivate(self, admin: str, user_id: str, erase: bool) -> None:
        row = await self.existing(user_id)
        for membership in await self.rooms.memberships_of_user(row.user_id):
            if membership.membership in ("join", "invite"):
                try:
                    await self.membership.leave(row.user_id, membership.room_id)
                except MatrixError:
                    continue
        await self.devices.delete_all(row.user_id)
        await self.tokens.revoke_user(row.user_id)
        await self.repo.clear_credentials(row.user_id)
        await self.repo.set_flag(row.user_id, "deactivated", True)
        if erase:
            await self.profile_repo.delete_user(row.user_id)
            await self.repo.set_flag(row.user_id, "erased", True)
        await self.repo.audit(admin, "deactivate", row.user_id, {"erase": erase}, self.clock.now_ms())

    async def reset_password(self, admin: str, user_id: str, body: Mapping[str, Any]) -> None:
        row = await self.existing(user_id)
        password = check_password(body.get("new_password"))
        await self.accounts.users.set_password_hash(row.user_id, await self.accounts.passwords.hash(password))
        if _bool(body.get("logout_devices", True), "logout_devices"):
            await self.devices.delete_all(row.user_id)
        await self.repo.audit(admin, "reset_password", row.user_id, {}, self.clock.now_ms())

    async def login_as(self, admin: str, user_id: str, body: Mapping[str, Any]) -> Json:
        """A token for support staff to act as the user; written to the audit log."""
        row = await self.existing(user_id)
        if row.user_id == admin:
            raise bad_param("Cannot use the admin API to log in as yourself")
        if body.get("valid_until_ms") is not None:
            raise bad_param("valid_until_ms is not supported: revoke the token with /logout instead")
        if row.deactivated:
            raise bad_param("The account is deactivated")
        device_id = "ADMIN_" + secrets.token_hex(5).upper()
        token = await self.tokens.issue(row.user_id, device_id)
        await self.repo.audit(admin, "login_as", row.user_id, {"device_id": device_id}, self.clock.now_ms())
        return {"access_token": token}

    async def set_flag(self, admin: str, user_id: str, flag: str, value: bool) -> None:
        row = await self.existing(user_id)
        if flag == "admin" and row.user_id == admin and not value:
            raise bad_param("You may not demote yourself")
        await self.repo.set_flag(row.user_id, flag, value)
        await self.repo.audit(admin, f"set_{flag}", row.user_id, {"value": value}, self.clock.now_ms())

    async def joined_rooms(self, user_id: str) -> Json:
        row = await self.existing(user_id)
        rooms = await self.rooms.joined_room_ids(row.user_id)
        return {"joined_rooms": rooms, "total": len(rooms)}

    async def account_data(self, user_id: str) -> Json:
        """The user's global and per-room account data."""
        account = await self.existing(user_id)
        rows = await self.account_data_repo.all_for_user(account.user_id) if self.account_data_repo else []
        global_data: Json = {}
        rooms: dict[str, Json] = {}
        for row in rows:
            if row.room_id:
                rooms.setdefault(row.room_id, {})[row.data_type] = row.content
            else:
                global_data[row.data_type] = row.content
        return {"account_data": {"global": global_data, "rooms": rooms}}

    # ---------------------------------------------------------- devices
    async def list_devices(self, user_id: str) -> Json:
        row = await self.existing(user_id)
        devices = [{**d, "user_id": row.user_id} for d in await self.devices.list_json(row.user_id)]
        return {"devices": devices, "total": len(devices)}

    async def get_device(self, user_id: str, device_id: str) -> Json:
        row = await self.existing(user_id)
        return {**await self.devices.get(row.user_id, device_id), "user_id": row.user_id}

    async def rename_device(self, user_id: str, device_id: str, body: Mapping[str, Any]) -> None:
        row = await self.existing(user_id)
        await self.devices.rename(row.user_id, device_id, body.get("display_name"))

    async def delete_devices(self, user_id: str, device_ids: Any) -> None:
        row = await self.existing(user_id)
        if not isinstance(device_ids, list) or not all(isinstance(d, str) for d in device_ids):
            raise bad_param("devices must be a list of device ids")
        await self.devices.delete(row.user_id, device_ids)

    async def whois(self, user_id: str) -> Json:
        row = await self.existing(user_id)
        devices: Json = {}
        for device in await self.devices.devices.list_for_user(row.user_id):
            connection = {"ip": device.last_seen_ip, "last_seen": device.last_seen_ts, "user_agent": None}
            devices[device.device_id] = {"sessions": [{"connections": [connection]}]}
        return {"user_id": row.user_id, "devices": devices}

    # ---------------------------------------------------- rate-limit overrides
    async def get_override(self, user_id: str) -> Json:
        row = await self.existing(user_id)
        found = await self.repo.get_override(row.user_id)
        return {} if found is None else {"messages_per_second": found[0], "burst_count": found[1]}

    async def set_override(self, admin: str, user_id: str, body: Mapping[str, Any]) -> Json:
        row = await self.existing(user_id)
        per_second, burst = body.get("messages_per_second", 0), body.get("burst_count", 0)
        for name, value in (("messages_per_second", per_second), ("burst_count", burst)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise bad_param(f"{name} must be a non-negative integer")
        await self.repo.set_override(row.user_id, per_second, burst)
        await self.repo.audit(admin, "override_ratelimit", row.user_id, dict(body), self.clock.now_ms())
        return {"messages_per_second": per_second, "burst_count": burst}

    async def delete_override(self, user_id: str) -> None:
        row = await self.existing(user_id)
        await self.repo.delete_override(row.user_id)

    async def account_status(self, user_id: str) -> AccountStatus:
        """Shadow ban and rate-limit override of ``user_id`` (one query)."""
        found = await self.repo.flags_and_override(user_id)
        return AccountStatus() if found is None else AccountStatus(found[0]["shadow_banned"], found[1])


def _email_from_threepids(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_param("threepids must be a list")
    for entry in value:
        if isinstance(entry, dict) and entry.get("medium") == "email" and isinstance(entry.get("address"), str):
            return normalise_email(entry["address"])
    return None


def _bool_param(params: Mapping[str, str], name: str, default: bool | None) -> Any:
    raw = params.get(name)
    if raw is None:
        return default
    if raw not in ("true", "false"):
        raise bad_param(f"{name} must be true or false")
    return raw == "true"

"""Shared-secret registration and registration tokens.

Shared-secret registration is Synapse's ``/_synapse/admin/v1/register``: the
client fetches a single-use nonce, then posts the account with an
HMAC-SHA1 over ``nonce NUL username NUL password NUL admin|notadmin
[NUL user_type]`` keyed with ``[registration] shared_secret`` (so
``register_new_matrix_user -k SECRET`` works).  An empty secret turns the
endpoint off.

Registration tokens (``m.login.registration_token``) gate ``/register``
when ``[registration] require_token`` is on; admins manage them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections.abc import Mapping
from typing import Any

from common.errors import Codes, MatrixError, bad_param, forbidden, not_found
from common.identifiers import is_valid_localpart, make_user_id
from homeserver.config import Config
from homeserver.services.accounts import AccountService
from homeserver.services.admin.users import check_password
from homeserver.services.clock import Clock
from homeserver.services.profiles import ProfileService
from homeserver.services.ratelimit import Limit
from homeserver.services.uia import UiaSession
from homeserver.storage.accounts import AlreadyExists
from homeserver.storage.admin_users import AdminUserRepository
from homeserver.storage.moderation import ModerationRepository, RegistrationToken

NONCE_TTL_MS = 60_000
# Nonces are rows in the database: an address gets at most this many per minute.
NONCE_LIMIT = Limit("admin_nonce", 30)
TOKEN_STAGE = "m.login.registration_token"
TOKEN_CHARS = re.compile(r"^[A-Za-z0-9._~-]{1,64}$")
TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._~-"

Json = dict[str, Any]


def registration_mac(secret: str, nonce: str, username: str, password: str, admin: bool,
                     user_type: str | None = None) -> str:
    mac = hmac.new(secret.encode("utf8"), digestmod=hashlib.sha1)
    mac.update(nonce.encode("utf8") + b"\x00" + username.encode("utf8") + b"\x00")
    mac.update(password.encode("utf8") + b"\x00" + (b"admin" if admin else b"notadmin"))
    if user_type:
        mac.update(b"\x00" + user_type.encode("utf8"))
    return mac.hexdigest()


class SharedSecretRegistration:
    def __init__(self, config: Config, accounts: AccountService, admin_users: AdminUserRepository,
                 repo: ModerationRepository, profiles: ProfileService, clock: Clock) -> None:
        self.profiles = profiles
        self.secret = config.registration.shared_secret
        self.server_name = config.server_name
        self.accounts = accounts
        self.admin_users = admin_users
        self.repo = repo
        self.clock = clock

    def _require_enabled(self) -> None:
        if not self.secret:
            raise MatrixError(400, Codes.UNKNOWN, "Shared secret registration is not enabled")

    async def nonce(self, ip: str | None) -> Json:
        """GET /_synapse/admin/v1/register"""
        self._require_enabled()
        await self.accounts.limiter.check(NONCE_LIMIT, f"ip:{ip}")
        nonce = secrets.token_hex(32)
        await self.repo.add_nonce(nonce, self.clock.now_ms() + NONCE_TTL_MS)
        return {"nonce": nonce}

    async def register(self, body: Mapping[str, Any], ip: str | None) -> Json:
        """POST /_synapse/admin/v1/register"""
        self._require_enabled()
        nonce, username, password, mac = (body.get(k) for k in ("nonce", "username", "password", "mac"))
        admin = body.get("admin", False)
        user_type = body.get("user_type")
        if not all(isinstance(v, str) for v in (nonce, username, password, mac)):
            raise MatrixError(400, Codes.MISSING_PARAM, "nonce, username, password and mac are required strings")
        assert isinstance(nonce, str) and isinstance(username, str)
        assert isinstance(password, str) and isinstance(mac, str)
        if not isinstance(admin, bool) or (user_type is not None and not isinstance(user_type, str)):
            raise bad_param("admin must be a boolean and user_type a string")
        if not await self.repo.take_nonce(nonce, self.clock.now_ms()):
            raise bad_param("unrecognised nonce")
        expected = registration_mac(self.secret, nonce, username, password, admin, user_type)
        if not hmac.compare_digest(expected, mac.lower()):
            raise forbidden("HMAC incorrect")
        localpart = username.lower()
        if not is_valid_localpart(localpart):
            raise MatrixError(400, Codes.INVALID_USERNAME, "Invalid user name")
        check_password(password)
        user_id = make_user_id(localpart, self.server_name)
        password_hash = await self.accounts.passwords.hash(password)
        try:
            await self.accounts.users.create(user_id, localpart, None, password_hash, None, self.clock.now_ms())
        except AlreadyExists:
            raise MatrixError(400, Codes.USER_IN_USE, "User ID already taken.") from None
        if admin:
            await self.admin_users.set_flag(user_id, "admin", True)
        displayname = body.get("displayname")
        if isinstance(displayname, str) and displayname:
            await self.profiles.set_field(user_id, user_id, "displayname", {"displayname": displayname})
        login = await self.accounts.login_new_device(user_id, ip)
        return {"access_token": login.access_token, "user_id": user_id,
                "home_server": self.server_name, "device_id": login.device_id}


class RegistrationTokenService:
    def __init__(self, repo: ModerationRepository, clock: Clock) -> None:
        self.repo = repo
        self.clock = clock

    async def list(self, valid: str | None) -> Json:
        tokens = await self.repo.tokens()
        if valid is not None:
            if valid not in ("true", "false"):
                raise bad_param("valid must be true or false")
            now = self.clock.now_ms()
            tokens = [t for t in tokens if t.is_valid(now) == (valid == "true")]
        return {"registration_tokens": [t.to_json() for t in tokens]}

    async def get(self, token: str) -> RegistrationToken:
        found = await self.repo.token(token)
        if found is None:
            raise not_found(f"No such registration token: {token[:64]}")
        return found

    def _limits(self, body: Mapping[str, Any]) -> dict[str, int | None]:
        changes: dict[str, int | None] = {}
        if "uses_allowed" in body:
            uses = body["uses_allowed"]
            if uses is not None and (not isinstance(uses, int) or isinstance(uses, bool) or uses < 0):
                raise bad_param("uses_allowed must be a non-negative integer or null")
            changes["uses_allowed"] = uses
        if "expiry_time" in body:
            expiry = body["expiry_time"]
            if expiry is not None and (
                not isinstance(expiry, int) or isinstance(expiry, bool) or expiry < self.clock.now_ms()
            ):
                raise bad_param("expiry_time must not be in the past")
            changes["expiry_time"] = expiry
        return changes

    async def create(self, body: Mapping[str, Any]) -> Json:
        token = body.get("token")
        if token is None:
            length = body.get("length", 16)
            if not isinstance(length, int) or isinstance(length, bool) or not 1 <= length <= 64:
                raise bad_param("length must be an integer between 1 and 64")
            token = "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(length))
        elif not isinstance(token, str) or not TOKEN_CHARS.match(token):
            raise bad_param("token must be 1-64 characters of A-Z, a-z, 0-9, '.', '_', '~' and '-'")
        limits = self._limits(body)
        if not await self.repo.create_token(token, limits.get("uses_allowed"), limits.get("expiry_time")):
            raise bad_param(f"Token already exists: {token}")
        return (await self.get(token)).to_json()

    async def update(self, token: str, body: Mapping[str, Any]) -> Json:
        await self.get(token)
        await self.repo.update_token(token, self._limits(body))
        return (await self.get(token)).to_json()

    async def delete(self, token: str) -> None:
        if not await self.repo.delete_token(token):
            raise not_found(f"No such registration token: {token[:64]}")

    async def validity(self, token: Any) -> bool:
        """GET /_matrix/client/v1/register/m.login.registration_token/validity"""
        if not isinstance(token, str) or not TOKEN_CHARS.match(token):
            raise bad_param("token must be a registration token")
        found = await self.repo.token(token)
        return found is not None and found.is_valid(self.clock.now_ms())

    async def check_stage(self, auth: Mapping[str, Any], session: UiaSession) -> str:
        del session
        token = auth.get("token")
        if not isinstance(token, str) or not await self.validity(token):
            raise MatrixError(401, Codes.UNAUTHORIZED, "Invalid registration token")
        return token

    async def consume(self, token: str) -> None:
        if not await self.repo.use_token(token, self.clock.now_ms()):
            raise MatrixError(401, Codes.UNAUTHORIZED, "The registration token has been used up or expired")

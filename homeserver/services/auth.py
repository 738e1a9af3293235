"""Access tokens: issued at login/registration, stored hashed, revocable.

A token is 32 random bytes (URL-safe base64 behind a ``prl_`` prefix); the
database keeps only its SHA-256, so a leaked database does not leak usable
tokens.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from common.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.storage.accounts import DeviceRepository, SeenDevice, TokenRepository

# Devices record when they were last seen; refreshing that on every request
# would turn each read into a write, so it is refreshed at most this often.
LAST_SEEN_GRANULARITY_MS = 60_000
# Devices whose last write is remembered before the stale notes are dropped.
_TOUCHED_MAX = 100_000


@dataclass(frozen=True)
class AccountStatus:
    """What the per-request account check read, for later steps of the same request."""

    shadow_banned: bool = False
    # The admin's rate-limit override (messages per second, burst), if one is set.
    message_override: tuple[int, int] | None = None


@dataclass(frozen=True)
class Requester:
    """Who is making an authenticated request."""

    user_id: str
    device_id: str
    access_token_hash: str
    is_guest: bool = False
    # Filled in by the account check of the request (None: not checked, e.g. in services' own calls).
    status: AccountStatus | None = None


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class TokenService:
    def __init__(self, tokens: TokenRepository, devices: DeviceRepository, clock: Clock) -> None:
        self.tokens = tokens
        self.devices = devices
        self.clock = clock
        # (user, device) -> (ms, ip) of this instance's last last-seen write.
        self._touched: dict[tuple[str, str], tuple[int, str | None]] = {}

    async def issue(self, user_id: str, device_id: str, is_guest: bool = False) -> str:
        token = "prl_" + secrets.token_urlsafe(32)
        await self.tokens.create(hash_token(token), user_id, device_id, self.clock.now_ms(), is_guest)
        return token

    async def authenticate(self, token: str | None, ip: str | None) -> Requester:
        if not token:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
        if len(token) > 256:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown access token", {"soft_logout": False})
        token_hash = hash_token(token)
        found = await self.tokens.lookup_with_device(token_hash)
        if found is None:
            raise MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown access token", {"soft_logout": False})
        owner, device = found
        if device is not None:
            await self._seen(owner.user_id, owner.device_id, device, ip)
        return Requester(owner.user_id, owner.device_id, token_hash, owner.is_guest)

    async def _seen(self, user_id: str, device_id: str, device: SeenDevice, ip: str | None) -> None:
        """Refresh the device's last-seen at most once per granule (and on a new address).

        Concurrent requests of one device (several long-polls) all read the same
        stale row; the in-memory note of this instance's last write lets only
        the first of them write."""
        now = self.clock.now_ms()
        key = (user_id, device_id)
        written = self._touched.get(key)
        if written is not None and written[1] == ip and now - written[0] < LAST_SEEN_GRANULARITY_MS:
            return
        if (device.last_seen_ts is not None and now - device.last_seen_ts < LAST_SEEN_GRANULARITY_MS
                and device.last_seen_ip == ip):
            return
        if len(self._touched) >= _TOUCHED_MAX:
            self._touched = {k: v for k, v in self._touched.items() if now - v[0] < LAST_SEEN_GRANULARITY_MS}
        self._touched[key] = (now, ip)
        await self.devices.touch(user_id, device_id, ip, now)

    async def owner(self, token: str | None) -> tuple[str, str] | None:
        """(user, device) of a valid token, or None; no side effects (idempotency-key scopes)."""
        if not token or len(token) > 256:
            return None
        owner = await self.tokens.lookup(hash_token(token))
        return None if owner is None else (owner.user_id, owner.device_id)

    async def revoke(self, requester: Requester) -> None:
        await self.tokens.delete_by_hash(requester.access_token_hash)

    async def revoke_device(self, user_id: str, device_id: str) -> None:
        await self.tokens.delete_for_device(user_id, device_id)

"""Access tokens: issued at login/registration, stored hashed, revocable.

A token is 32 random bytes (URL-safe base64 behind a ``prl_`` prefix); the
database keeps only its SHA-256, so a leaked database does not leak usable
tokens.
"""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from common.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.storage.accounts import DeviceRepository, SeenDevice, TokenLookup, TokenRepository

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


# Suspended accounts may still do these (MSC3823): leave rooms, log out, manage devices.
SUSPENDED_ALLOWED_SUFFIXES = ("/leave", "/logout", "/logout/all", "/delete_devices")
LOCKED_ALLOWED_SUFFIXES = ("/logout", "/logout/all")
# Tokens a /sync remembers (least recently used first out).
_KNOWN_MAX = 100_000


def check_flags(flags: dict[str, bool] | None, override: tuple[int, int] | None, method: str,
                path: str) -> AccountStatus:
    """Every authenticated request: a locked account may only log out; a suspended one
    may read, leave rooms, log out and delete devices (MSC3823).  The shadow-ban flag
    and rate-limit override are kept for the request's send."""
    if flags is None:
        return AccountStatus()
    status = AccountStatus(flags["shadow_banned"], override)
    if flags["locked"] and not path.endswith(LOCKED_ALLOWED_SUFFIXES):
        raise MatrixError(401, Codes.USER_LOCKED, "This account has been locked", {"soft_logout": True})
    if not flags["suspended"] or method in ("GET", "HEAD", "OPTIONS"):
        return status
    if path.endswith(SUSPENDED_ALLOWED_SUFFIXES) or (method == "DELETE" and "/devices/" in path):
        return status
    raise MatrixError(403, "M_USER_SUSPENDED", "This account has been suspended")


@dataclass
class _Known:
    """A token as a /sync found it, valid while the auth counter stays at ``counter``."""

    found: TokenLookup
    counter: int


def _unknown_token() -> MatrixError:
    return MatrixError(401, Codes.UNKNOWN_TOKEN, "Unknown access token", {"soft_logout": False})


class TokenService:
    """Issues, checks and revokes access tokens.

    Most requests read their token (with its device and account) from the
    database.  ``/sync``, the request every client repeats, remembers it
    (:meth:`authenticate_remembered`) and trusts the memory only as long as the
    auth counter (``storage/streams.py``: moved by every token deletion and
    account flag change, on any instance) has not moved: the sync reads that
    counter with its stream positions and calls :meth:`confirm` before it
    builds anything, so a logout on one instance refuses the token on every
    other one at its next /sync, with no wake-up to wait for.
    """

    def __init__(self, tokens: TokenRepository, devices: DeviceRepository, clock: Clock) -> None:
        self.tokens = tokens
        self.devices = devices
        self.clock = clock
        # (user, device) -> (ms, ip) of this instance's last last-seen write.
        self._touched: dict[tuple[str, str], tuple[int, str | None]] = {}
        # token hash -> what a /sync read, and the auth counter it was valid at.
        self._known: OrderedDict[str, _Known] = OrderedDict()
        self._counter = 0  # the highest auth counter this instance has read

    async def issue(self, user_id: str, device_id: str, is_guest: bool = False) -> str:
        token = "prl_" + secrets.token_urlsafe(32)
        await self.tokens.create(hash_token(token), user_id, device_id, self.clock.now_ms(), is_guest)
        return token

    @staticmethod
    def _hash(token: str | None) -> str:
        if not token:
            raise MatrixError(401, Codes.MISSING_TOKEN, "Missing access token")
        if len(token) > 256:
            raise _unknown_token()
        return hash_token(token)

    async def _lookup(self, token_hash: str) -> TokenLookup:
        found = await self.tokens.lookup_for_request(token_hash)
        if found is None:
            self._known.pop(token_hash, None)
            raise _unknown_token()
        return found

    async def authenticate(self, token: str | None, ip: str | None, method: str = "GET",
                           path: str = "") -> Requester:
        """The requester of a token read from the database (one statement), with its account checked."""
        token_hash = self._hash(token)
        return await self._admit(token_hash, await self._lookup(token_hash), ip, method, path)

    async def authenticate_remembered(self, token: str | None, ip: str | None, method: str,
                                      path: str) -> Requester:
        """Like :meth:`authenticate`, from memory when this instance read the token before;
        the caller must :meth:`confirm` it against the auth counter before it answers."""
        token_hash = self._hash(token)
        known = self._known.get(token_hash)
        if known is None:
            counter = self._counter  # read before the token: a later deletion moves it past
            known = _Known(await self._lookup(token_hash), counter)
            self._remember(token_hash, known)
        else:
            self._known.move_to_end(token_hash)
        return await self._admit(token_hash, known.found, ip, method, path)

    async def confirm(self, requester: Requester, counter: int, method: str, path: str) -> None:
        """The token is still valid at auth counter ``counter`` (read before this call),
        or MatrixError: it was deleted, or its account locked, since it was remembered."""
        self._counter = max(self._counter, counter)
        known = self._known.get(requester.access_token_hash)
        if known is not None and known.counter >= counter:
            return
        found = await self._lookup(requester.access_token_hash)
        if found.owner.user_id != requester.user_id or found.owner.device_id != requester.device_id:
            raise _unknown_token()
        check_flags(found.flags, found.override, method, path)
        self._remember(requester.access_token_hash, _Known(found, counter))

    def _remember(self, token_hash: str, known: _Known) -> None:
        self._known[token_hash] = known
        self._known.move_to_end(token_hash)
        if len(self._known) > _KNOWN_MAX:
            self._known.popitem(last=False)

    async def _admit(self, token_hash: str, found: TokenLookup, ip: str | None, method: str,
                     path: str) -> Requester:
        owner = found.owner
        status = check_flags(found.flags, found.override, method, path)
        if found.seen is not None:
            seen = await self._seen(owner.user_id, owner.device_id, found.seen, ip)
            if seen is not found.seen and token_hash in self._known:
                self._known[token_hash].found = dataclasses.replace(found, seen=seen)
        return Requester(owner.user_id, owner.device_id, token_hash, owner.is_guest, status)

    async def _seen(self, user_id: str, device_id: str, device: SeenDevice, ip: str | None) -> SeenDevice:
        """Refresh the device's last-seen at most once per granule (and on a new address);
        return what the device row holds now.

        Concurrent requests of one device (several long-polls) all read the same
        stale row; the in-memory note of this instance's last write lets only
        the first of them write."""
        now = self.clock.now_ms()
        key = (user_id, device_id)
        written = self._touched.get(key)
        if written is not None and written[1] == ip and now - written[0] < LAST_SEEN_GRANULARITY_MS:
            return device
        if (device.last_seen_ts is not None and now - device.last_seen_ts < LAST_SEEN_GRANULARITY_MS
                and device.last_seen_ip == ip):
            return device
        if len(self._touched) >= _TOUCHED_MAX:
            self._touched = {k: v for k, v in self._touched.items() if now - v[0] < LAST_SEEN_GRANULARITY_MS}
        self._touched[key] = (now, ip)
        await self.devices.touch(user_id, device_id, ip, now)
        return SeenDevice(now, ip)

    async def owner(self, token: str | None) -> tuple[str, str] | None:
        """(user, device) of a valid token, or None; no side effects (idempotency-key scopes)."""
        if not token or len(token) > 256:
            return None
        owner = await self.tokens.lookup(hash_token(token))
        return None if owner is None else (owner.user_id, owner.device_id)

    def _forget(self, keep: Callable[[_Known], bool]) -> None:
        for token_hash in [h for h, k in self._known.items() if not keep(k)]:
            del self._known[token_hash]

    async def revoke(self, requester: Requester) -> None:
        self._known.pop(requester.access_token_hash, None)
        await self.tokens.delete_by_hash(requester.access_token_hash)

    async def revoke_device(self, user_id: str, device_id: str) -> None:
        self._forget(lambda k: (k.found.owner.user_id, k.found.owner.device_id) != (user_id, device_id))
        await self.tokens.delete_for_device(user_id, device_id)

    async def revoke_user(self, user_id: str) -> None:
        self._forget(lambda k: k.found.owner.user_id != user_id)
        await self.tokens.delete_for_user(user_id)

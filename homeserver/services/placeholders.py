"""Placeholder accounts: e-mail lookups never reveal whether an address is registered.

Looking up an unregistered address reserves a *placeholder* account for it:
a ``users`` row with ``is_placeholder = 1``, the address, and a user id
derived from a keyed hash of the address (``@u<base32(HMAC(secret, email))>``,
so repeated lookups by anyone give the same id), plus one device with
server-generated identity, signed pre-key and one-time keys whose private
halves are thrown away.  To the asker it looks like any other user: its
profile answers (empty), ``/keys/query`` returns keys, it can be invited.

When somebody registers with the address, the account service upgrades the
placeholder in place (same user id, invitations intact) and calls
:meth:`PlaceholderService.on_upgraded`, which deletes the placeholder's
device and keys: whatever was encrypted to them is unreadable and is not
kept (device deletion listeners drop pending to-device messages).

Placeholders older than ``PLACEHOLDER_TTL_MS`` (30 days) without a *real
conversation* are removed by the housekeeper.  A real conversation means:
the placeholder has a membership (an invitation it still holds) in a room in
which at least one real (non-placeholder) user is joined -- checked through
the ``conversation_check`` the composition root installs from the rooms
service; without a rooms service no placeholder has one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from common.crypto.keys import IdentityKeyPair, OneTimePreKey, SignedPreKey
from common.identifiers import make_user_id
from homeserver.services.clock import Clock
from homeserver.services.devices import DeviceService
from homeserver.storage.accounts import DeviceRepository
from homeserver.storage.placeholders import PlaceholderRepository

logger = logging.getLogger(__name__)

PLACEHOLDER_TTL_MS = 30 * 24 * 3600 * 1000
PLACEHOLDER_OTKS = 5
SECRET_NAME = "placeholder_ids"
SIGNED_PRE_KEY_FIELD = "im.parley.signed_pre_key"
OTK_ALGORITHM = "im.parley.signed_x25519"

# (user_id, device_id, keys_upload_body) -> stores the keys like an upload.
KeyStore = Callable[[str, str, dict[str, Any]], Awaitable[None]]
ConversationCheck = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class Resolved:
    user_id: str
    is_placeholder: bool


def generate_key_upload(user_id: str, device_id: str, now_ms: int) -> dict[str, Any]:
    """A ``/keys/upload`` body like a Parley client's, with fresh keys whose private
    halves are discarded: self-signed device keys carrying a signed pre-key, and
    signed one-time pre-keys."""
    identity = IdentityKeyPair.generate()
    device_keys = identity.device_keys(user_id, device_id)
    device_keys.pop("signatures", None)
    device_keys[SIGNED_PRE_KEY_FIELD] = SignedPreKey.generate(1, now_ms).signed_public(
        identity, user_id, device_id
    )
    device_keys = identity.sign_json(device_keys, user_id, device_id)
    otks = {}
    for key_id in range(1, PLACEHOLDER_OTKS + 1):
        otk = OneTimePreKey.generate(key_id)
        otks[f"{OTK_ALGORITHM}:{key_id}"] = otk.signed_public(identity, user_id, device_id)
    return {"device_keys": device_keys, "one_time_keys": otks}


class PlaceholderService:
    def __init__(
        self, server_name: str, repo: PlaceholderRepository, devices: DeviceService,
        device_repo: DeviceRepository, clock: Clock,
    ) -> None:
        self.server_name = server_name
        self.repo = repo
        self.devices = devices
        self.device_repo = device_repo
        self.clock = clock
        self.key_store: KeyStore | None = None
        self.conversation_check: ConversationCheck | None = None
        # Declines and forgets what the placeholder still holds, before removal.
        self.release_memberships: Callable[[str], Awaitable[None]] | None = None
        self._secret: bytes | None = None

    async def _key(self) -> bytes:
        if self._secret is None:
            self._secret = bytes.fromhex(await self.repo.secret(SECRET_NAME))
        return self._secret

    async def _derive(self, purpose: str, email: str, length: int) -> str:
        digest = hmac.new(await self._key(), f"{purpose}:{email}".encode(), hashlib.sha256).digest()
        return base64.b32encode(digest).decode("ascii").rstrip("=")[:length]

    async def _candidate(self, email: str, attempt: int) -> str:
        localpart = "u" + (await self._derive(f"user{attempt}", email, 24)).lower()
        return make_user_id(localpart, self.server_name)

    async def _device_id(self, email: str) -> str:
        # Same alphabet and length as devices created by a login.
        return "".join(c for c in await self._derive("device", email, 52) if c.isalpha())[:10]

    async def resolve(self, email: str) -> Resolved | None:
        """The account for ``email``, reserving a placeholder if there is none.

        Both outcomes run the same statements (key generation, an
        insert-if-absent, a read of the holder, a device read), so neither
        the answer nor its cost says whether the address is registered.
        """
        now = self.clock.now_ms()
        device_id = await self._device_id(email)
        for attempt in range(3):
            user_id = await self._candidate(email, attempt)
            keys = generate_key_upload(user_id, device_id, now)
            await self.repo.reserve(user_id, user_id[1:].split(":", 1)[0], email, now)
            holder = await self.repo.holder_of(email)
            if holder is None:
                continue  # the derived id belongs to someone else: try the next one
            holder_id, placeholder = holder
            existing = await self.device_repo.get(holder_id, device_id)
            if placeholder and existing is None:
                await self._create_device(holder_id, device_id, keys, now)
            return Resolved(holder_id, placeholder)
        return None

    async def _create_device(self, user_id: str, device_id: str, keys: dict[str, Any], now: int) -> None:
        _, created = await self.device_repo.ensure(user_id, device_id, None, None, now)
        if created and self.key_store is not None:
            if keys["device_keys"]["user_id"] != user_id:
                keys = generate_key_upload(user_id, device_id, now)
            await self.key_store(user_id, device_id, keys)

    async def on_upgraded(self, user_id: str) -> None:
        """A placeholder became a real account: drop its server-made device and keys."""
        await self.devices.delete_all(user_id)

    async def cleanup(self) -> int:
        """Remove placeholders older than 30 days without a real conversation."""
        cutoff = self.clock.now_ms() - PLACEHOLDER_TTL_MS
        removed = 0
        for user_id in await self.repo.placeholders_created_before(self.server_name, cutoff):
            if self.conversation_check is not None and await self.conversation_check(user_id):
                continue
            if self.release_memberships is not None:
                await self.release_memberships(user_id)
            await self.devices.delete_all(user_id)
            if await self.repo.delete_placeholder(user_id):
                removed += 1
        if removed:
            logger.info("removed %d stale placeholder account(s)", removed)
        return removed

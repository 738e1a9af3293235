"""Placeholder accounts: e-mail lookups never reveal whether an address is registered.

Looking up an unregistered address reserves a *placeholder* account for it:
a ``users`` row with ``is_placeholder = 1``, the address, and a user id
derived from a keyed hash of the address (``@u<base32(HMAC(secret, email))>``,
so repeated lookups by anyone give the same id).  Its profile answers (empty)
and it can be invited, like any user who has not set a profile.

A placeholder has **no devices and no keys**: the server never makes keys for
a person (it would hold, or could have kept, their private halves).
``/keys/query`` answers no devices for it, so a client knows that the
conversation waits: it keeps what the user writes and encrypts it to the
person's own devices once they register and upload keys (device-list
changes in ``/sync`` tell it when).  This reveals to someone who looked an
address up whether that person has a device yet -- the price of never having
server-made keys; the lookup answer itself is the same either way.

When somebody registers with the address, they get the user id they chose: the
account service creates that account, moves the address to it and makes the
placeholder's id an **alias** of it (``user_aliases``, migration 0130: an
invitation to the alias reaches the account), then calls
:meth:`PlaceholderService.on_upgraded`, which deletes any device left from
before placeholders stopped having keys (migration 0080 removes those at
start-up as well) and hands the placeholder's invitations over: each local
inviter invites the account, and the placeholder declines, so the conversation
continues with the person under their chosen name (``hand_over_memberships``,
installed by the composition root).

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

from common.identifiers import make_user_id
from homeserver.services.clock import Clock
from homeserver.services.devices import DeviceService
from homeserver.storage.placeholders import PlaceholderRepository

logger = logging.getLogger(__name__)

PLACEHOLDER_TTL_MS = 30 * 24 * 3600 * 1000
SECRET_NAME = "placeholder_ids"

ConversationCheck = Callable[[str], Awaitable[bool]]


@dataclass(frozen=True)
class Resolved:
    user_id: str
    is_placeholder: bool


class PlaceholderService:
    def __init__(
        self, server_name: str, repo: PlaceholderRepository, devices: DeviceService, clock: Clock,
    ) -> None:
        self.server_name = server_name
        self.repo = repo
        self.devices = devices
        self.clock = clock
        self.conversation_check: ConversationCheck | None = None
        # Declines and forgets what the placeholder still holds, before removal.
        self.release_memberships: Callable[[str], Awaitable[None]] | None = None
        # (placeholder id, account id): moves its invitations to the account that took it over.
        self.hand_over_memberships: Callable[[str, str], Awaitable[None]] | None = None
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

    async def resolve(self, email: str) -> Resolved | None:
        """The account for ``email``, reserving a placeholder if there is none.

        Both outcomes run the same statements (an insert-if-absent and a read
        of the holder), so neither the answer nor its cost says whether the
        address is registered.  No device and no key is made.
        """
        now = self.clock.now_ms()
        for attempt in range(3):
            user_id = await self._candidate(email, attempt)
            await self.repo.reserve(user_id, user_id[1:].split(":", 1)[0], email, now)
            holder = await self.repo.holder_of(email)
            if holder is None:
                continue  # the derived id belongs to someone else: try the next one
            return Resolved(*holder)
        return None

    async def on_upgraded(self, placeholder_id: str, user_id: str) -> None:
        """The placeholder's person registered as ``user_id``: drop any device the placeholder
        still has (only placeholders made before they stopped having keys had one) and move
        its invitations to the account."""
        await self.devices.delete_all(placeholder_id)
        if self.hand_over_memberships is not None:
            await self.hand_over_memberships(placeholder_id, user_id)

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

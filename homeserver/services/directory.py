"""Finding people: e-mail lookup, the Matrix user directory, and contacts.

* ``lookup_email`` answers ``{"user_id": ...}`` for any valid address, the
  same shape and status whether or not it is registered (an unregistered
  address resolves to its placeholder, see ``placeholders.py``); it is
  authenticated and rate-limited per asker.  The asker is recorded in
  ``email_lookups`` and, when the keys service installs ``grant_lookup``,
  allowed to query the found user's keys.  Both paths run the same
  statements (a placeholder has no device and no keys to create); every
  answer is still held back to at least ``LOOKUP_MIN_ANSWER_MS`` of real
  time, so that cache and row-creation differences do not show either.
* ``search`` (``POST /user_directory/search``) and ``contacts`` only ever
  return users who share a joined room with the searcher.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from common.errors import Codes, MatrixError, bad_param
from common.identifiers import normalise_email
from homeserver.config import Config
from homeserver.services.clock import Clock
from homeserver.services.devices import DeviceService
from homeserver.services.keys import KeyService
from homeserver.services.media import MediaService
from homeserver.services.membership import MembershipService
from homeserver.services.placeholders import ConversationCheck, PlaceholderService
from homeserver.services.profiles import AVATAR_URL, DISPLAYNAME, ProfileService
from homeserver.services.ratelimit import Limit, RateLimiter
from homeserver.services.rooms import RoomService
from homeserver.services.sync_api import MembershipReader
from homeserver.storage.accounts import UserRepository
from homeserver.storage.database import Database
from homeserver.storage.media import MediaRepository
from homeserver.storage.media_store import make_media_store
from homeserver.storage.placeholders import PlaceholderRepository
from homeserver.storage.profiles import ProfileRepository

logger = logging.getLogger(__name__)

# Every e-mail lookup takes at least this long (real time), see lookup_email.
LOOKUP_MIN_ANSWER_MS = 150
MAX_SEARCH_TERM = 256
MAX_SEARCH_LIMIT = 50
DEFAULT_SEARCH_LIMIT = 10

GrantLookup = Callable[[str, str], Awaitable[None]]


class DirectoryService:
    def __init__(
        self, placeholders: PlaceholderService, repo: PlaceholderRepository,
        profiles: ProfileService, limiter: RateLimiter, clock: Clock, lookups_per_minute: int,
    ) -> None:
        self.placeholders = placeholders
        self.repo = repo
        self.profiles = profiles
        self.limiter = limiter
        self.clock = clock
        self.lookup_limit = Limit("email_lookup", lookups_per_minute)
        self.membership: MembershipReader | None = None
        self.grant_lookup: GrantLookup | None = None
        self.min_answer_s = LOOKUP_MIN_ANSWER_MS / 1000
        self.server_name = profiles.server_name
        # ``async () -> users in public rooms``, set by the app (room directory storage).
        self.public_room_users: Callable[[], Awaitable[set[str]]] | None = None

    async def lookup_email(self, asker: str, email: Any) -> dict[str, Any]:
        if not isinstance(email, str):
            raise MatrixError(400, Codes.MISSING_PARAM, "email is required")
        address = normalise_email(email)
        await self.limiter.check(self.lookup_limit, asker)
        started = time.monotonic()
        resolved = await self.placeholders.resolve(address)
        if resolved is None:
            raise MatrixError(500, Codes.UNKNOWN, "Could not resolve the address")
        await self.repo.record_lookup(asker, resolved.user_id, self.clock.now_ms())
        if self.grant_lookup is not None:
            await self.grant_lookup(asker, resolved.user_id)
        # Reserving a placeholder the first time (an inserted row) may cost
        # more than finding a registered account: answer no sooner than a
        # floor above both, so the timing class is the same.
        remaining = self.min_answer_s - (time.monotonic() - started)
        if remaining > 0:
            await asyncio.sleep(remaining)
        return {"user_id": resolved.user_id}

    async def _mates(self, user_id: str) -> list[str]:
        if self.membership is None:
            return []
        return sorted(u for u in await self.membership.users_sharing_a_room(user_id) if u != user_id)

    async def _searchable(self, user_id: str) -> list[str]:
        """Room mates and (spec, "User directory") users in public rooms, the searcher
        among them when in one (the directory lists them to everyone, themselves too)."""
        found = set(await self._mates(user_id))
        if self.public_room_users is not None:
            suffix = ":" + self.server_name
            found |= {u for u in await self.public_room_users() if u.endswith(suffix)}
        return sorted(found)

    async def _entries(self, user_ids: list[str]) -> list[dict[str, Any]]:
        basics = await self.profiles.basics(user_ids)
        out = []
        for user_id in user_ids:
            fields = basics.get(user_id, {})
            out.append({
                "user_id": user_id,
                "display_name": fields.get(DISPLAYNAME),
                "avatar_url": fields.get(AVATAR_URL),
            })
        return out

    async def search(self, user_id: str, body: dict[str, Any]) -> dict[str, Any]:
        term = body.get("search_term")
        if not isinstance(term, str) or len(term) > MAX_SEARCH_TERM:
            raise MatrixError(400, Codes.MISSING_PARAM, "search_term must be a string")
        limit = body.get("limit", DEFAULT_SEARCH_LIMIT)
        if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
            raise bad_param("limit must be a non-negative integer")
        limit = min(limit, MAX_SEARCH_LIMIT)
        needle = term.strip().lower()
        matches = []
        for entry in await self._entries(await self._searchable(user_id)):
            haystack = f"{entry['user_id']}\n{entry['display_name'] or ''}".lower()
            if needle in haystack:
                matches.append(entry)
        matches.sort(key=lambda e: ((e["display_name"] or e["user_id"]).lower(), e["user_id"]))
        return {"results": matches[:limit], "limited": len(matches) > limit}

    async def contacts(self, user_id: str) -> dict[str, Any]:
        entries = await self._entries(await self._mates(user_id))
        entries.sort(key=lambda e: ((e["display_name"] or e["user_id"]).lower(), e["user_id"]))
        return {"contacts": entries}


@dataclass
class PeopleServices:
    """Media, profiles, placeholders and the directory, built together."""

    media: MediaService
    profiles: ProfileService
    placeholders: PlaceholderService
    directory: DirectoryService

    @property
    def housekeepers(self) -> list[Callable[[], Awaitable[Any]]]:
        return [self.media.cleanup, self.placeholders.cleanup]


def build_people(
    config: Config, database: Database, limiter: RateLimiter, clock: Clock,
    devices: DeviceService, users: UserRepository,
) -> PeopleServices:
    store = make_media_store(config.media, config.media_path, config.data_path)
    media = MediaService(config, MediaRepository(database), limiter, clock, store)
    profiles = ProfileService(config.server_name, ProfileRepository(database), users, media, clock)
    media.protect_with(profiles.avatars_in_use)
    placeholder_repo = PlaceholderRepository(database)
    placeholders = PlaceholderService(config.server_name, placeholder_repo, devices, clock)
    directory = DirectoryService(
        placeholders, placeholder_repo, profiles, limiter, clock,
        config.rate_limits.email_lookup_per_minute,
    )
    return PeopleServices(media, profiles, placeholders, directory)


def connect_people(
    people: PeopleServices, keys: KeyService, rooms: RoomService, membership: MembershipService
) -> None:
    """Hook media, profiles, placeholders and the directory up to keys and rooms."""
    people.directory.grant_lookup = keys.grant_lookup
    people.profiles.use_rooms(rooms, rooms)
    people.directory.membership = rooms
    people.media.use_membership(rooms.joined_rooms)
    people.media.use_event_info(_event_info(rooms))
    rooms.on_room_purged(people.media.on_room_purged)
    rooms.on_event_redacted(people.media.on_event_redacted)
    rooms.set_profile_lookup(people.profiles.public_basics)
    people.placeholders.conversation_check = _conversation_check(rooms, people.placeholders)
    people.placeholders.release_memberships = _release_memberships(rooms, membership)
    people.placeholders.hand_over_memberships = _hand_over_memberships(rooms, membership)


def _release_memberships(rooms: RoomService, membership: MembershipService) -> Callable[[str], Awaitable[None]]:
    """Before a placeholder is removed, decline and forget its invitations, so
    that a placeholder re-created later for the same address (same id) does not
    inherit them."""

    async def release(user_id: str) -> None:
        for held in await rooms.repo.memberships_of_user(user_id):
            if held.membership == "invite":
                await membership.leave(user_id, held.room_id)
            await membership.forget(user_id, held.room_id)

    return release


def _event_info(rooms: RoomService) -> Callable[[str], Awaitable[tuple[str, str] | None]]:
    async def info(event_id: str) -> tuple[str, str] | None:
        event = await rooms.events.get(event_id)
        return None if event is None else (str(event.room_id), str(event.sender))

    return info


def _hand_over_memberships(rooms: RoomService, membership: MembershipService
                           ) -> Callable[[str, str], Awaitable[None]]:
    """The placeholder's person registered as ``user_id``: in every room where the placeholder
    is invited (or joined: a direct chat joins its invitee at once), a local member -- the one
    who invited it first -- invites the account; a direct chat's account joins at once, as its
    placeholder did; then the placeholder leaves and forgets the room."""

    async def hand_over(placeholder_id: str, user_id: str) -> None:
        suffix = ":" + rooms.server_name
        for held in await rooms.repo.memberships_of_user(placeholder_id):
            if held.membership not in ("invite", "join"):
                continue
            room_id = held.room_id
            event = await membership.membership_event(room_id, placeholder_id)
            first = [event.sender] if event is not None and event.sender != placeholder_id else []
            others = [u for u in await rooms.joined_users(room_id) if u not in first and u != placeholder_id]
            invited = False
            for inviter in (u for u in first + others if u.endswith(suffix)):
                try:
                    await membership.invite(inviter, room_id, user_id)
                except MatrixError as exc:  # e.g. this member may not invite: ask the next one
                    logger.info("%s cannot invite %s to %s: %s", inviter, user_id, room_id, exc.message)
                    continue
                invited = True
                break
            if invited and held.membership == "join":
                await membership.join(user_id, room_id)
            if not invited:
                logger.warning("the invitation of %s to %s could not be handed over to %s",
                               placeholder_id, room_id, user_id)
            await membership.leave(placeholder_id, room_id)
            await membership.forget(placeholder_id, room_id)

    return hand_over


def _conversation_check(rooms: RoomService, placeholders: PlaceholderService) -> ConversationCheck:
    """A placeholder has a real conversation when it holds an invitation (or
    membership) in a room where at least one real user is joined."""

    async def check(user_id: str) -> bool:
        for membership in await rooms.repo.memberships_of_user(user_id):
            if membership.membership not in ("invite", "join"):
                continue
            for member in await rooms.joined_users(membership.room_id):
                if member != user_id and not await placeholders.repo.is_placeholder(member):
                    return True
        return False

    return check

"""Profiles: display name and avatar (Matrix) plus Parley's extra fields.

The extra fields -- ``im.parley.phone``, ``im.parley.location`` and
``im.parley.email`` -- are set like Matrix 1.16 custom profile fields
(``PUT /profile/{userId}/{keyName}``) and each has a visibility:
``everyone``, ``shared_room`` (people who share a joined room with the
owner) or ``nobody``.  The server enforces it for every reader: the owner
sees everything, a room-mate sees ``everyone`` and ``shared_room`` fields,
anybody else only ``everyone`` fields.  A hidden field and an unset field
look the same.

The display name and avatar are public, as in Matrix (they travel in
``m.room.member`` events anyway): every authenticated user can read them.
Placeholder accounts (see ``placeholders.py``) answer exactly like real
accounts with an empty profile.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from common.errors import Codes, MatrixError, bad_param, forbidden, not_found
from common.identifiers import normalise_email, parse_user_id
from homeserver.services.clock import Clock
from homeserver.services.media import MediaService
from homeserver.services.remote_queries import RemoteQueries
from homeserver.services.sync_api import MembershipReader
from homeserver.storage.accounts import UserRepository
from homeserver.storage.profiles import ProfileRepository

DISPLAYNAME = "displayname"
AVATAR_URL = "avatar_url"
PHONE = "im.parley.phone"
LOCATION = "im.parley.location"
EMAIL = "im.parley.email"

PUBLIC_FIELDS = (DISPLAYNAME, AVATAR_URL)
EXTRA_FIELDS = (PHONE, LOCATION, EMAIL)
ALL_FIELDS = PUBLIC_FIELDS + EXTRA_FIELDS

EVERYONE = "everyone"
SHARED_ROOM = "shared_room"
NOBODY = "nobody"
VISIBILITIES = (EVERYONE, SHARED_ROOM, NOBODY)
DEFAULT_VISIBILITY = SHARED_ROOM

MAX_DISPLAYNAME = 256
MAX_PHONE = 32
MAX_LOCATION = 100

ProfileListener = Callable[[str, str | None, str | None], Awaitable[None]]


class ProfilePropagator(Protocol):
    async def update_profile_in_rooms(
        self, user_id: str, displayname: str | None, avatar_url: str | None
    ) -> None: ...


def _no_controls(value: str) -> bool:
    return not any(ord(c) < 0x20 or ord(c) == 0x7F for c in value)


def default_displayname(user_id: str) -> str:
    """An account that never set a display name shows its localpart (as on Synapse).

    Computed when read, never stored, so a placeholder account and a fresh
    real account still look the same."""
    return user_id[1:].split(":", 1)[0][:MAX_DISPLAYNAME]


class ProfileService:
    def __init__(
        self, server_name: str, repo: ProfileRepository, users: UserRepository,
        media: MediaService, clock: Clock,
    ) -> None:
        self.server_name = server_name
        self.repo = repo
        self.users = users
        self.media = media
        # Other servers' users (query/profile), set by the composition root when federation is on.
        self.remote: RemoteQueries | None = None
        self.clock = clock
        self.membership: MembershipReader | None = None
        self.propagator: ProfilePropagator | None = None

    def use_rooms(self, membership: MembershipReader, propagator: ProfilePropagator | None) -> None:
        """Called by the composition root once the rooms service exists."""
        self.membership = membership
        self.propagator = propagator

    async def avatars_in_use(self, uris: list[str]) -> set[str]:
        return await self.repo.values_in_use(AVATAR_URL, uris)

    # ------------------------------------------------------------------ reading
    async def _check_user(self, user_id: Any) -> str:
        if not isinstance(user_id, str):
            raise bad_param("Invalid user id")
        _, server = parse_user_id(user_id)
        if server != self.server_name:
            raise not_found("Profile not found")
        user = await self.users.get(user_id)
        if user is None or user.deactivated:
            raise not_found("Profile not found")
        return user_id

    async def _reader_level(self, reader: str, owner: str) -> set[str]:
        """The visibilities ``reader`` may see on ``owner``'s profile."""
        if reader == owner:
            return set(VISIBILITIES)
        if not reader:  # anonymous
            return {EVERYONE}
        if self.membership is not None and owner in await self.membership.users_sharing_a_room(reader):
            return {EVERYONE, SHARED_ROOM}
        return {EVERYONE}

    async def get_profile(self, reader: str, user_id: Any) -> dict[str, Any]:
        owner = await self._check_user(user_id)
        rows = await self.repo.fields(owner)
        allowed = await self._reader_level(reader, owner)
        out: dict[str, Any] = {}
        if DISPLAYNAME not in rows:
            out[DISPLAYNAME] = default_displayname(owner)
        for name, row in rows.items():
            if row.value is None or name not in ALL_FIELDS:
                continue
            visibility = EVERYONE if name in PUBLIC_FIELDS else row.visibility
            if visibility in allowed:
                out[name] = row.value
        return out

    async def get_field(self, reader: str, user_id: Any, field: str) -> dict[str, Any]:
        if field not in ALL_FIELDS:
            raise not_found("Profile field not found")
        profile = await self.get_profile(reader, user_id)
        if field in profile:
            return {field: profile[field]}
        if field in PUBLIC_FIELDS:
            return {}
        raise not_found("Profile field not found")

    async def read(self, reader: str, user_id: Any, field: str | None = None) -> dict[str, Any]:
        """The client API's read: a user of another server is asked of their server (``query/profile``,
        public fields only); ours as :meth:`get_profile` / :meth:`get_field`."""
        if isinstance(user_id, str) and self.remote is not None:
            _, server = parse_user_id(user_id)
            if server != self.server_name:
                answer = await self.remote.profile(server, user_id, field)
                if field is not None and field not in answer:
                    raise not_found("Profile field not found")
                return answer
        if field is not None:
            return await self.get_field(reader, user_id, field)
        return await self.get_profile(reader, user_id)

    async def visibility(self, user_id: str) -> dict[str, str]:
        rows = await self.repo.fields(user_id)
        return {
            name: rows[name].visibility if name in rows else DEFAULT_VISIBILITY
            for name in EXTRA_FIELDS
        }

    # ------------------------------------------------------------------ writing
    async def set_field(self, requester: str, user_id: Any, field: str, body: dict[str, Any]) -> None:
        if not isinstance(user_id, str):
            raise bad_param("Invalid user id")
        parse_user_id(user_id)
        if user_id != requester:
            raise forbidden("You can only change your own profile")
        if field not in ALL_FIELDS:
            raise bad_param(f"Unsupported profile field {field[:64]!r}")
        if field not in body:
            raise MatrixError(400, Codes.MISSING_PARAM, f"{field} is required")
        value = await self._validate(requester, field, body[field])
        now = self.clock.now_ms()
        default = EVERYONE if field in PUBLIC_FIELDS else DEFAULT_VISIBILITY
        await self.repo.set_value(requester, field, value, default, now)
        if field in PUBLIC_FIELDS and self.propagator is not None:
            rows = await self.repo.fields(requester)
            name = rows[DISPLAYNAME].value if DISPLAYNAME in rows else None
            avatar = rows[AVATAR_URL].value if AVATAR_URL in rows else None
            await self.propagator.update_profile_in_rooms(requester, name, avatar)

    async def _validate(self, user_id: str, field: str, value: Any) -> str | None:
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise bad_param(f"{field} must be a string")
        if field == DISPLAYNAME:
            if len(value) > MAX_DISPLAYNAME or not _no_controls(value):
                raise bad_param(f"Display names are at most {MAX_DISPLAYNAME} printable characters")
            return value
        if field == AVATAR_URL:
            await self.media.check_avatar(user_id, value)
            return value
        if field == PHONE:
            if len(value) > MAX_PHONE or not all(c.isdigit() or c in "+-() ./" for c in value):
                raise bad_param(f"Phone numbers are at most {MAX_PHONE} digits and separators")
            return value
        if field == LOCATION:
            if len(value) > MAX_LOCATION or not _no_controls(value):
                raise bad_param(f"Locations are at most {MAX_LOCATION} printable characters")
            return value
        return normalise_email(value)

    async def delete_field(self, requester: str, user_id: Any, field: str) -> None:
        await self.set_field(requester, user_id, field, {field: None})

    async def set_visibility(self, user_id: str, body: dict[str, Any]) -> dict[str, str]:
        if not body:
            raise MatrixError(400, Codes.MISSING_PARAM, "Give at least one field and its visibility")
        for name, visibility in body.items():
            if name not in EXTRA_FIELDS:
                raise bad_param(f"Visibility can be set for {', '.join(EXTRA_FIELDS)} only")
            if visibility not in VISIBILITIES:
                raise bad_param(f"Visibility must be one of {', '.join(VISIBILITIES)}")
        now = self.clock.now_ms()
        for name, visibility in body.items():
            await self.repo.set_visibility(user_id, name, str(visibility), now)
        return await self.visibility(user_id)

    async def public_basics(self, user_id: str) -> tuple[str | None, str | None]:
        """(display name, avatar URL) for new ``m.room.member`` events."""
        fields = (await self.basics([user_id])).get(user_id, {})
        return fields.get(DISPLAYNAME), fields.get(AVATAR_URL)

    async def basics(self, user_ids: list[str]) -> dict[str, dict[str, str]]:
        """Display name and avatar of many users (public fields only)."""
        rows = await self.repo.rows_for(user_ids, list(PUBLIC_FIELDS))
        values: dict[str, dict[str, str]] = {}
        for user_id in user_ids:
            fields = rows.get(user_id, {})
            mine = {f: v for f, v in fields.items() if v is not None}
            if DISPLAYNAME not in fields:
                mine[DISPLAYNAME] = default_displayname(user_id)
            values[user_id] = mine
        return values

"""Server administration (Synapse-compatible admin API, the admin command line).

:func:`build_admin_services` composes the admin services from the
homeserver's other services and registers the hooks through which admin
decisions take effect (locked and suspended accounts, shadow bans,
rate-limit overrides, blocked rooms, quarantined media, registration
tokens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from homeserver.config import Config
from homeserver.services.admin.media import AdminMediaService
from homeserver.services.admin.notices import ServerNoticeService
from homeserver.services.admin.registration import RegistrationTokenService, SharedSecretRegistration
from homeserver.services.admin.reports import ReportService
from homeserver.services.admin.retention import RetentionService
from homeserver.services.admin.room_tools import AdminRoomTools
from homeserver.services.admin.rooms import AdminRoomService
from homeserver.services.admin.server_policy import ServerPolicy, parse_deny_list
from homeserver.services.admin.users import AdminUserService
from homeserver.storage.admin_media import AdminMediaRepository
from homeserver.storage.admin_rooms import AdminRoomRepository
from homeserver.storage.admin_users import AdminUserRepository
from homeserver.storage.database import Database
from homeserver.storage.moderation import ModerationRepository
from homeserver.storage.profiles import ProfileRepository
from homeserver.storage.retention import RetentionRepository

if TYPE_CHECKING:
    from homeserver.app import Services


@dataclass
class AdminServices:
    users: AdminUserService
    registration: SharedSecretRegistration
    tokens: RegistrationTokenService
    rooms: AdminRoomService
    media: AdminMediaService
    reports: ReportService
    notices: ServerNoticeService
    moderation: ModerationRepository
    retention: RetentionService
    servers: ServerPolicy
    room_tools: AdminRoomTools
    media_retention_days: int = 0

    async def expire(self) -> None:
        """Housekeeping: expired nonces, media and room history past their retention."""
        await self.moderation.expire_nonces(self.users.clock.now_ms())
        await self.media.apply_retention(self.media_retention_days)
        await self.retention.purge_expired()


def build_admin_services(config: Config, database: Database, s: Services) -> AdminServices:
    user_repo = AdminUserRepository(database)
    moderation = ModerationRepository(database)
    users = AdminUserService(
        config.server_name, user_repo, s.accounts, s.tokens, s.devices, s.membership, s.rooms.repo,
        s.profiles, ProfileRepository(database), s.clock,
    )
    users.account_data_repo = s.account_data.repo
    tokens = RegistrationTokenService(moderation, s.clock)
    rooms = AdminRoomService(config.server_name, AdminRoomRepository(database), s.rooms, s.membership,
                             moderation, user_repo, s.clock)
    media = AdminMediaService(s.media, AdminMediaRepository(database, config.server_name), moderation, user_repo, s.profiles,
                              s.clock)
    retention = RetentionService(RetentionRepository(database, config.server_name), s.media, s.media.repo,
                                 s.clock, config.admin.retention_enabled,
                                 config.admin.retention_default_max_lifetime_days)
    admin = AdminServices(
        users=users,
        registration=SharedSecretRegistration(config, s.accounts, user_repo, moderation, s.profiles, s.clock),
        tokens=tokens, rooms=rooms, media=media,
        reports=ReportService(moderation, s.rooms, s.messages, s.limiter, s.clock),
        notices=ServerNoticeService(config.server_name, config.admin.server_notices_localpart, s.accounts.users,
                                    s.rooms, moderation, s.clock),
        moderation=moderation,
        retention=retention,
        room_tools=AdminRoomTools(rooms, users, moderation, retention),
        servers=ServerPolicy(parse_deny_list(config.admin.server_deny_list), s.rooms.events,
                             parse_deny_list(config.federation.allow_list)),
        media_retention_days=config.admin.media_retention_local_days,
    )
    s.messages.policy = users
    s.membership.entry_checks.append(rooms.check_not_blocked)
    s.media.serve_checks.append(media.check_servable)
    s.media.serve_checks.append(media.record_access)
    s.accounts.registration_tokens = tokens
    return admin

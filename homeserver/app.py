"""The composition root: ``create_app(config)`` builds one homeserver.

Nothing here is module-level state, so tests can run several homeservers
in one process.  Services are built once and handed their dependencies
through constructors; the API reaches them through ``app.state.hs``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from common.errors import Codes, MatrixError
from homeserver.api.body_guard import BodyGuardMiddleware
from homeserver.api.http import error_response
from homeserver.api.idempotency import IdempotencyMiddleware
from homeserver.api.metrics import RequestMetricsMiddleware
from homeserver.api.middleware import BodyLimitMiddleware, DatabaseContextMiddleware
from homeserver.api.proxy import TrustedProxyMiddleware
from homeserver.api.resilience import ReplayIdempotentRequests, storage_unavailable
from homeserver.api.routes import all_routes
from homeserver.config import Config
from homeserver.federation.setup import Federation, build_federation
from homeserver.log_safety import keep_query_parameters_out_of_logs
from homeserver.metrics import Metrics
from homeserver.notifier import Notifier
from homeserver.services.account_admin import AccountAdminService
from homeserver.services.account_data import AccountDataService
from homeserver.services.accounts import AccountService
from homeserver.services.admin import AdminServices, build_admin_services
from homeserver.services.auth import TokenService
from homeserver.services.clock import Clock
from homeserver.services.cross_signing import CrossSigningService
from homeserver.services.devices import DeviceService
from homeserver.services.directory import DirectoryService, build_people, connect_people
from homeserver.services.federation_rooms import FederationRooms, build_federation_rooms
from homeserver.services.filters import FilterService
from homeserver.services.guest_access import GuestEviction
from homeserver.services.health import HealthService
from homeserver.services.idempotency import IdempotencyService
from homeserver.services.identity_client import IdentityServerClient
from homeserver.services.key_backup import KeyBackupService
from homeserver.services.keys import KeyService
from homeserver.services.mail import Mailer, build_mailer
from homeserver.services.media import MediaService
from homeserver.services.membership import MembershipService
from homeserver.services.messages import MessageService
from homeserver.services.notifications import NotificationService
from homeserver.services.openid import OpenIdService
from homeserver.services.pairing import PairingService
from homeserver.services.password_reset import PasswordResetService
from homeserver.services.passwords import PasswordHasher
from homeserver.services.placeholders import PlaceholderService
from homeserver.services.presence import PresenceService
from homeserver.services.profiles import ProfileService
from homeserver.services.push_counts import PushCounter
from homeserver.services.push_gateway import PushDispatcher
from homeserver.services.push_rules import PushRuleService
from homeserver.services.pushers import PusherService
from homeserver.services.ratelimit import (
    CounterStore,
    DatabaseCounters,
    FallbackCounters,
    RateLimiter,
    RedisCounters,
)
from homeserver.services.ratelimit_buffer import BufferedCounters
from homeserver.services.receipts import ReceiptService, build_extras
from homeserver.services.relations import RelationService
from homeserver.services.remote_queries import RemoteQueries
from homeserver.services.room_directory import RoomDirectoryService
from homeserver.services.room_services import build_room_services
from homeserver.services.room_upgrade import RoomUpgradeService
from homeserver.services.rooms import RoomService
from homeserver.services.search import SearchService
from homeserver.services.space_hierarchy import SpaceHierarchyService
from homeserver.services.sync import SyncService
from homeserver.services.sync_api import STREAMS
from homeserver.services.sync_v1 import LegacySyncService
from homeserver.services.third_party_invites import ThirdPartyInviteService
from homeserver.services.threepids import ThreepidService
from homeserver.services.to_device import ToDeviceService
from homeserver.services.typing import TypingService
from homeserver.services.uia import InteractiveAuth
from homeserver.signing_key import SigningKey, generate_signing_key, key_from_seed, read_signing_key_file
from homeserver.storage.accounts import DeviceRepository, TokenRepository, UserRepository
from homeserver.storage.auth_state import AuthStateRepository
from homeserver.storage.cross_signing import CrossSigningRepository
from homeserver.storage.database import Database
from homeserver.storage.event_search import EventSearchRepository
from homeserver.storage.health import HealthRepository
from homeserver.storage.history import BACKFILL_STREAM
from homeserver.storage.idempotency import IdempotencyRepository
from homeserver.storage.key_backup import KeyBackupRepository
from homeserver.storage.keys import KeyRepository
from homeserver.storage.pairing import PairingRepository
from homeserver.storage.pushers import PusherRepository
from homeserver.storage.ratelimits import RateLimitRepository
from homeserver.storage.relations import RelationRepository
from homeserver.storage.retry import is_transient, retrying
from homeserver.storage.room_directory import RoomDirectoryRepository
from homeserver.storage.server_keys import ServerKeyRepository
from homeserver.storage.streams import COUNTERS, StreamRepository
from homeserver.storage.threepid_bindings import ThreepidBindingRepository
from homeserver.storage.wake_queue import WakeQueueRepository
from homeserver.tls import trust_also
from homeserver.wakeups import DatabaseBus, RedisBus, WakeBus

logger = logging.getLogger(__name__)

# Attempts of the idempotent start-up writes (signing key, stream rows).
START_ATTEMPTS = 10

HOUSEKEEPING_INTERVAL_S = 60.0

Housekeeper = Callable[[], Awaitable[Any]]


@dataclass
class Services:
    """Every service of one homeserver; built by :func:`build_services`."""

    clock: Clock
    limiter: RateLimiter
    tokens: TokenService
    devices: DeviceService
    accounts: AccountService
    uia: InteractiveAuth
    mailer: Mailer
    streams: StreamRepository
    notifier: Notifier
    # Rooms, events, /sync, to-device (services/room_services.py).
    rooms: RoomService
    membership: MembershipService
    messages: MessageService
    sync: SyncService
    to_device: ToDeviceService
    upgrades: RoomUpgradeService
    # Receipts, typing, presence, account data, filters (services/receipts.py).
    filters: FilterService
    account_data: AccountDataService
    presence: PresenceService
    typing: TypingService
    receipts: ReceiptService
    # End-to-end keys.
    keys: KeyService
    key_backup: KeyBackupService
    pairing: PairingService
    # Media, profiles and finding people (services/directory.py).
    media: MediaService
    profiles: ProfileService
    placeholders: PlaceholderService
    directory: DirectoryService
    # The rest of the client-server API (issue 21).
    push_rules: PushRuleService
    room_directory: RoomDirectoryService
    account_admin: AccountAdminService
    legacy_sync: LegacySyncService
    cross_signing: CrossSigningService
    openid: OpenIdService
    pushers: PusherService
    push_gateway: PushDispatcher
    threepids: ThreepidService
    third_party_invites: ThirdPartyInviteService
    password_reset: PasswordResetService
    search: SearchService
    spaces: SpaceHierarchyService
    relations: RelationService
    notifications: NotificationService
    health: HealthService
    idempotency: IdempotencyService
    # Server administration (services/admin/), built after the rest.
    admin: AdminServices = field(init=False)


@dataclass
class Homeserver:
    config: Config
    database: Database
    signing_key: SigningKey
    services: Services
    redis: Any = None
    housekeepers: list[Housekeeper] = field(default_factory=list)
    metrics: Metrics | None = None
    background: list[asyncio.Task[None]] = field(default_factory=list)
    # The server-server API (homeserver/federation/); built by create_app.
    federation: Federation = field(init=False)
    # Rooms shared with other servers (services/federation_rooms.py); built by create_app.
    federation_rooms: FederationRooms = field(init=False)


def _connect_redis(url: str) -> Any:
    import redis.asyncio as redis_asyncio

    # A Redis that does not answer must not hold requests: fail fast, fall back.
    return redis_asyncio.from_url(url, socket_connect_timeout=2)


def build_services(
    config: Config, database: Database, signing_key: SigningKey, clock: Clock, redis: Any,
    mailer: Mailer | None,
) -> tuple[Services, list[Housekeeper]]:
    users = UserRepository(database)
    device_repo = DeviceRepository(database)
    token_repo = TokenRepository(database)
    auth_state = AuthStateRepository(database)
    database_counters = BufferedCounters(DatabaseCounters(RateLimitRepository(database)), clock)
    counters: CounterStore = (
        FallbackCounters(RedisCounters(redis, prefix=f"parley:{config.server_name}:"), database_counters)
        if redis is not None
        else database_counters
    )
    limiter = RateLimiter(
        counters, clock, enabled=config.rate_limits.enabled, namespace=config.server_name
    )
    tokens = TokenService(token_repo, device_repo, clock)
    devices = DeviceService(device_repo, clock)
    devices.on_deleted(_revoke_tokens(tokens))
    # logout/all, deactivation, a password reset: every token, device row or not.
    devices.on_all_deleted(tokens.tokens.delete_for_user)
    uia = InteractiveAuth(auth_state, clock)
    mail = mailer or build_mailer(config)
    accounts = AccountService(
        config, users, auth_state, PasswordHasher(config.security.password_scrypt_log_n, config.security.password_hashing_threads),
        tokens, devices, uia, mail, limiter, clock,
    )
    streams = StreamRepository(database, multi_writer=config.database.multi_writer)
    # Unique per process and per app: tests run several instances in one process.
    origin = f"{config.instance}/{secrets.token_hex(4)}"
    bus: WakeBus = (
        RedisBus(redis, f"parley:{config.server_name}:wake") if redis is not None
        else DatabaseBus(WakeQueueRepository(database), origin)
    )
    notifier = Notifier(bus, origin=origin)

    core = build_room_services(
        config, database, signing_key, streams, notifier, clock, limiter, users, device_repo, devices
    )
    extras = build_extras(database, streams, notifier, clock, core.rooms, config.limits.max_sync_timeout_ms)
    keys = KeyService(
        KeyRepository(database, streams), notifier, clock, config.server_name,
        limiter=limiter, claims_per_hour=config.rate_limits.one_time_key_claims_per_hour,
    )
    keys.membership, keys.history = core.rooms, core.rooms.events
    devices.on_deleted(keys.on_devices_deleted)
    # A new or renamed device is a device-list change for everyone sharing a room.
    devices.on_created(keys.device_list_changed)
    devices.on_renamed(keys.device_list_changed)
    pairing = PairingService(
        PairingRepository(database), limiter, clock, config.server_name,
        config.rate_limits.pairing_per_minute,
    )
    people = build_people(config, database, limiter, clock, devices, users)
    connect_people(people, keys, core.rooms, core.membership)
    accounts.placeholder_upgraded.append(people.placeholders.on_upgraded)

    # /sync: the core builds the rooms; every other stream contributes its part.
    core.sync.add_contributor(keys)
    for contributor in extras.contributors:
        core.sync.add_contributor(contributor)
    core.sync.set_activity_hook(extras.presence.on_sync)
    core.sync.set_filter_store(extras.filters)
    core.sync.ignored_users = extras.account_data.ignored_users
    core.messages.ignored_users = extras.account_data.ignored_users
    core.rooms.on_room_purged(extras.on_room_purged)
    push_rules = PushRuleService(extras.account_data)
    counter = PushCounter(push_rules, extras.receipts.repo, core.rooms.events, core.rooms.repo)
    extras.unread.push_counts = counter.counts
    pusher_repo = PusherRepository(database)
    pushers = PusherService(pusher_repo, clock)
    push_gateway = PushDispatcher(pusher_repo, core.rooms.repo, counter, core.rooms.events,
                                  verify=trust_also(config.push.gateway_ca_file))
    extras.receipts.read_listeners.append(push_gateway.on_read)
    core.rooms.sender.on_committed(push_gateway.on_committed)
    core.rooms.sender.on_committed(GuestEviction(core.rooms.sender, token_repo, config.server_name).on_committed)
    devices.on_deleted(pushers.on_devices_deleted)
    threepids = ThreepidService(
        accounts, ThreepidBindingRepository(database),
        IdentityServerClient(config.identity, signing_key, config.server_name),
    )
    cross_signing = CrossSigningService(CrossSigningRepository(database), keys, accounts, clock)
    keys.query_extensions.append(cross_signing.add_to_query)
    room_directory = RoomDirectoryService(RoomDirectoryRepository(database), core.rooms, clock)
    core.rooms.directory = room_directory
    people.directory.public_room_users = room_directory.repo.users_in_public_rooms
    core.rooms.on_room_purged(room_directory.on_room_purged)

    services = Services(
        clock=clock, limiter=limiter, tokens=tokens, devices=devices, accounts=accounts, uia=uia,
        mailer=mail, streams=streams, notifier=notifier,
        rooms=core.rooms, membership=core.membership, messages=core.messages, sync=core.sync,
        to_device=core.to_device, upgrades=core.upgrades,
        filters=extras.filters, account_data=extras.account_data, presence=extras.presence,
        typing=extras.typing, receipts=extras.receipts,
        keys=keys, key_backup=KeyBackupService(KeyBackupRepository(database), clock), pairing=pairing,
        media=people.media, profiles=people.profiles, placeholders=people.placeholders,
        directory=people.directory,
        push_rules=push_rules,
        room_directory=room_directory,
        legacy_sync=LegacySyncService(core.sync, room_directory.repo.is_published, core.messages),
        cross_signing=cross_signing,
        openid=OpenIdService(signing_key, config.server_name, clock),
        pushers=pushers,
        push_gateway=push_gateway,
        threepids=threepids,
        third_party_invites=ThirdPartyInviteService(core.membership, threepids.identity, config.server_name),
        password_reset=PasswordResetService(accounts, devices),
        search=SearchService(core.rooms, core.messages, EventSearchRepository(database)),
        spaces=SpaceHierarchyService(core.rooms, room_directory),
        relations=RelationService(core.rooms, core.messages, RelationRepository(database)),
        notifications=NotificationService(counter, core.rooms.formatter),
        account_admin=AccountAdminService(
            accounts, users, accounts.passwords, devices, core.membership, core.rooms.repo,
            people.profiles.repo, threepids,
        ),
        health=HealthService(HealthRepository(database), notifier, redis, config.instance),
        idempotency=IdempotencyService(
            IdempotencyRepository(database), clock, config.server_name,
            config.limits.idempotency_ttl_ms, config.limits.idempotency_wait_ms,
        ),
    )

    services.admin = build_admin_services(config, database, services)

    async def expire_auth_state() -> None:
        await auth_state.delete_expired(clock.now_ms())

    housekeepers: list[Housekeeper] = [
        expire_auth_state, limiter.cleanup, pairing.expire, services.admin.expire, services.idempotency.expire,
        *core.housekeepers, *extras.housekeepers, *people.housekeepers,
    ]
    return services, housekeepers


def _revoke_tokens(tokens: TokenService) -> Callable[[str, list[str]], Awaitable[None]]:
    async def revoke(user_id: str, device_ids: list[str]) -> None:
        for device_id in device_ids:
            await tokens.revoke_device(user_id, device_id)

    return revoke


async def _housekeeping(hs: Homeserver, interval_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        for task in hs.housekeepers:
            try:
                await task()
            except Exception:
                logger.exception("housekeeping task %r failed", task)


async def _matrix_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, MatrixError)
    return error_response(exc)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        return error_response(MatrixError(404, Codes.UNRECOGNIZED, "Unrecognized request"))
    if exc.status_code == 405:
        return error_response(MatrixError(405, Codes.UNRECOGNIZED, "Method not allowed"))
    return error_response(MatrixError(exc.status_code, Codes.UNKNOWN, str(exc.detail)))


async def _internal_error(request: Request, exc: Exception) -> Response:
    if is_transient(exc):
        logger.warning("database unavailable serving %s %s: %s", request.method, request.url.path, exc)
        return error_response(storage_unavailable())
    logger.error("unhandled error serving %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(MatrixError(500, Codes.UNKNOWN, "Internal server error"))


def prepare_data_dir(config: Config) -> None:
    """Create the data folders private to the server's user (0700)."""
    for path in (config.data_path, config.media_path):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)


async def load_signing_key(config: Config, database: Database, into: SigningKey, clock: Clock) -> None:
    """Fill ``into`` with the deployment's key: the stored one, or one this instance creates.

    An older deployment's ``signing.key`` file is imported instead of a new key.
    """
    candidate = read_signing_key_file(config.data_path / "signing.key") or generate_signing_key()
    key_id, seed = await ServerKeyRepository(database).get_or_create(
        config.server_name, candidate.key_id, candidate.seed_b64, clock.now_ms()
    )
    into.load(key_id, key_from_seed(seed))


def create_app(
    config: Config,
    clock: Clock | None = None,
    mailer: Mailer | None = None,
    housekeeping_interval_s: float = HOUSEKEEPING_INTERVAL_S,
) -> Starlette:
    """Build a homeserver application for ``config``."""
    config.validate()
    keep_query_parameters_out_of_logs()
    prepare_data_dir(config)
    clock = clock or Clock()
    database = Database(config.database_url, config.database.pool_min, config.database.pool_max)
    redis = _connect_redis(config.redis_url) if config.redis_url else None
    signing_key = SigningKey()  # filled from the database at start-up
    services, housekeepers = build_services(config, database, signing_key, clock, redis, mailer)
    hs = Homeserver(config, database, signing_key, services, redis, housekeepers)
    hs.metrics = Metrics(services.notifier, database, redis)
    hs.federation = build_federation(config, database, signing_key, services, clock)
    hs.federation_rooms = build_federation_rooms(
        services.rooms.events, services.notifier, clock, hs.federation.keyring.lookup, hs.federation.client,
        signing_key, config.server_name, services.rooms.sender, services.rooms.users)
    hs.federation.set_pdu_handler(hs.federation_rooms.events)
    hs.federation_rooms.set_outgoing(hs.federation.sender)
    services.membership.remote = hs.federation_rooms
    if config.federation.enabled:
        queries = RemoteQueries(hs.federation.client)
        services.room_directory.remote_rooms = queries
        services.profiles.remote = queries
    services.sync.sections.remote_invite_state = hs.federation_rooms.invites.repo.invite_state
    services.messages.backfill = hs.federation_rooms.backfill.backfill
    hs.housekeepers.append(hs.federation.transactions.expire)
    services.rooms.sender.persist_observers.append(hs.metrics.persist.observe)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await database.open()
        with database.activated():
            # Both steps are idempotent; instances starting together on one SQLite
            # file can meet "database is locked" at once (a reader cannot wait for a
            # writer there), so they are repeated, bounded and jittered.
            async for attempt in retrying(START_ATTEMPTS, reads=False):
                with attempt:
                    await load_signing_key(config, database, signing_key, clock)
                    await services.streams.prepare((*STREAMS, BACKFILL_STREAM, *COUNTERS))
            await services.notifier.start()
            await hs.federation.start()
            hs.background.append(
                asyncio.create_task(_housekeeping(hs, housekeeping_interval_s))
            )
            try:
                yield
            finally:
                await services.notifier.stop()
                await hs.federation.close()
                await services.push_gateway.close()
                services.accounts.passwords.close()
                await services.threepids.identity.close()
                await services.media.store.close()
                await services.streams.close()
                for task in hs.background:
                    task.cancel()
                for task in hs.background:
                    with contextlib.suppress(asyncio.CancelledError, Exception):
                        await task
                if redis is not None:
                    await redis.aclose()
                await database.close()

    app = Starlette(
        routes=all_routes(),
        middleware=[
            Middleware(RequestMetricsMiddleware, metrics=hs.metrics),
            Middleware(TrustedProxyMiddleware, trusted=config.trusted_proxy_networks),
            Middleware(DatabaseContextMiddleware, database=database),
            Middleware(
                BodyGuardMiddleware, idle_timeout_s=config.limits.body_idle_timeout_ms / 1000,
                drain_bytes=config.limits.max_file_bytes + config.limits.max_request_bytes,
            ),
            Middleware(
                BodyLimitMiddleware,
                max_bytes=config.limits.max_request_bytes,
                exempt_prefixes=("/_matrix/media/",),
                prefix_limits=(("/_matrix/federation/", config.federation.max_transaction_bytes),),
            ),
            # Inside the body limit: both buffer bodies (POSTs with an Idempotency-Key, repeats).
            Middleware(IdempotencyMiddleware, service=services.idempotency, tokens=services.tokens),
            Middleware(ReplayIdempotentRequests, never_buffer_prefixes=("/_matrix/media/",)),
        ],
        exception_handlers={
            MatrixError: _matrix_error,
            HTTPException: _http_error,
            Exception: _internal_error,
        },
        lifespan=lifespan,
    )
    app.state.hs = hs
    return app

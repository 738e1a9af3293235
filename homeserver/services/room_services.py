"""Builds the room, message, sync and to-device services (called from ``app.build_services``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.config import Config
from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.devices import DeviceService
from homeserver.services.event_format import EventFormatter
from homeserver.services.event_sender import EventSender
from homeserver.services.membership import MembershipService
from homeserver.services.messages import MessageService
from homeserver.services.ratelimit import RateLimiter
from homeserver.services.room_upgrade import RoomUpgradeService
from homeserver.services.rooms import RoomService
from homeserver.services.sync import SyncService
from homeserver.services.to_device import ToDeviceService
from homeserver.signing_key import SigningKey
from homeserver.storage.accounts import DeviceRepository, UserRepository
from homeserver.storage.database import Database
from homeserver.storage.events import EventRepository
from homeserver.storage.rooms import RoomRepository
from homeserver.storage.streams import StreamRepository
from homeserver.storage.to_device import ToDeviceRepository

TXN_RETENTION_MS = 24 * 3600 * 1000


@dataclass
class RoomServices:
    rooms: RoomService
    membership: MembershipService
    messages: MessageService
    sync: SyncService
    to_device: ToDeviceService
    housekeepers: list[Any]
    upgrades: RoomUpgradeService


def build_room_services(config: Config, database: Database, signing_key: SigningKey,
                        streams: StreamRepository, notifier: Notifier,
                        clock: Clock, limiter: RateLimiter, users: UserRepository,
                        device_repo: DeviceRepository, devices: DeviceService) -> RoomServices:
    events = EventRepository(database, streams)
    room_repo = RoomRepository(database)
    sender = EventSender(events, room_repo, signing_key, config.server_name, clock, notifier)
    formatter = EventFormatter(events, clock)
    rooms = RoomService(config, events, room_repo, users, sender, formatter, clock)
    to_device = ToDeviceService(
        ToDeviceRepository(database, streams), device_repo, notifier, clock, config.server_name
    )
    devices.on_deleted(to_device.device_deleted)
    sync = SyncService(config, events, room_repo, streams, notifier, formatter, to_device)

    async def expire_txns() -> None:
        await events.delete_txns_older_than(clock.now_ms() - TXN_RETENTION_MS)

    return RoomServices(
        rooms=rooms,
        membership=MembershipService(rooms),
        messages=MessageService(config, rooms, limiter),
        sync=sync,
        to_device=to_device,
        housekeepers=[expire_txns, to_device.cleanup],
        upgrades=RoomUpgradeService(rooms),
    )

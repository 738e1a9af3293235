"""Building the federation layer of one homeserver (called by the composition root)."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any

from homeserver.config import Config
from homeserver.federation.client import FederationClient, tls_context
from homeserver.federation.edus import EduHandler
from homeserver.federation.keyring import KeyRing
from homeserver.federation.outgoing_pdus import PduFanout
from homeserver.federation.pdus import PduHandler, UnimplementedPduHandler
from homeserver.federation.remote_directory import RemoteDirectory
from homeserver.federation.remote_keys import RemoteKeys
from homeserver.federation.request_auth import RequestAuthenticator
from homeserver.federation.sender import TransactionSender
from homeserver.federation.transactions import TransactionReceiver
from homeserver.services.clock import Clock
from homeserver.services.server_key_queries import ServerKeyQueries
from homeserver.signing_key import SigningKey
from homeserver.storage.database import Database
from homeserver.storage.federation_keys import ServerKeyCache
from homeserver.storage.federation_queue import OutboxRepository
from homeserver.storage.federation_txns import ReceivedTransactions

JsonDict = dict[str, Any]


@dataclass
class Federation:
    """Everything of the server-server API of one homeserver (see homeserver/federation/__init__.py)."""

    server_name: str
    config: Config
    keyring: KeyRing
    client: FederationClient
    authenticator: RequestAuthenticator
    pdu_handler: PduHandler
    sender: TransactionSender
    transactions: TransactionReceiver
    edus: EduHandler
    user_keys: ServerKeyQueries
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    def set_pdu_handler(self, handler: PduHandler) -> None:
        self.pdu_handler = handler

    async def start(self) -> None:
        """Start sending queued transactions (from the app's lifespan, in its database context)."""
        if self.config.federation.enabled:
            self._task = asyncio.create_task(self.sender.run())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
        await self.sender.stop()
        await self.client.close()


def build_federation(config: Config, database: Database, signing_key: SigningKey, services: Any,
                     clock: Clock) -> Federation:
    fed = config.federation
    policy = services.admin.servers
    client = FederationClient(
        config.server_name, signing_key, fed.override_map(), clock,
        tls_context(fed.ca_file, fed.verify_tls), fed.request_timeout_ms / 1000,
        lambda server: not policy.denied_everywhere(server),
    )

    async def fetch_keys(destination: str, path: str, body: JsonDict | None) -> JsonDict:
        method = "GET" if body is None else "POST"
        return await client.request(destination, method, path, json=body, authenticated=False)

    notaries = [n.strip() for n in fed.trusted_key_servers.split(",") if n.strip()]
    keyring = KeyRing(config.server_name, signing_key, ServerKeyCache(database), clock, fetch_keys,
                      fed.key_validity_hours * 3600 * 1000, notaries)
    authenticator = RequestAuthenticator(config.server_name, keyring, policy, services.limiter, clock,
                                         fed.requests_per_minute_per_origin, fed.enabled)
    sender = TransactionSender(config.server_name, OutboxRepository(database), client, clock,
                               fed.retry_min_ms, fed.retry_max_ms, fed.sender_lease_ms)
    edus = EduHandler(config.server_name, services, sender)
    federation = Federation(config.server_name, config, keyring, client, authenticator, UnimplementedPduHandler(),
                            sender, TransactionReceiver(config.server_name, ReceivedTransactions(database), edus,
                                                        lambda: federation.pdu_handler, clock), edus,
                            ServerKeyQueries(config.server_name, services.keys, services.devices, services.rooms))
    if fed.enabled:
        _connect_services(config.server_name, services, sender, edus)
    return federation


def _connect_services(server_name: str, services: Any, sender: TransactionSender, edus: EduHandler) -> None:
    """Local PDUs and EDUs leave through the sender."""
    for service in (services.typing, services.receipts, services.presence):
        service.federation, service.server_name = sender, server_name
    services.to_device.federation = sender
    services.keys.change_listeners.append(edus.local_device_change)
    services.keys.remote = RemoteKeys(sender.client)
    services.room_directory.remote = RemoteDirectory(sender.client)
    services.rooms.sender.on_committed(PduFanout(server_name, services.rooms, sender).on_committed)

"""Building the federation layer of one homeserver (called by the composition root)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from homeserver.config import Config
from homeserver.federation.client import FederationClient, tls_context
from homeserver.federation.keyring import KeyRing
from homeserver.federation.pdus import PduHandler, UnimplementedPduHandler
from homeserver.federation.request_auth import RequestAuthenticator
from homeserver.services.clock import Clock
from homeserver.signing_key import SigningKey
from homeserver.storage.database import Database
from homeserver.storage.federation_keys import ServerKeyCache

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

    def set_pdu_handler(self, handler: PduHandler) -> None:
        self.pdu_handler = handler

    async def close(self) -> None:
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
                                         fed.requests_per_minute_per_origin)
    return Federation(config.server_name, config, keyring, client, authenticator, UnimplementedPduHandler())

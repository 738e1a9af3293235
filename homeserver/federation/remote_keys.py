"""Our clients' ``/keys/query`` and ``/keys/claim`` for users of other servers.

The key service hands the remote users, grouped by server, to
:class:`RemoteKeys`, which asks each server concurrently
(``POST /user/keys/query`` / ``/user/keys/claim``) and merges what it answers
for *its own* users only (a server cannot speak for another's users).  A
server that fails is reported in ``failures`` under its name, as the spec says.
"""

from __future__ import annotations

import asyncio
from typing import Any

from common.errors import MatrixError
from homeserver.federation.client import FederationClient
from homeserver.services.federation_out import server_of

JsonDict = dict[str, Any]
QUERY_TIMEOUT_S = 10.0
CROSS_SIGNING_FIELDS = ("master_keys", "self_signing_keys")


def _by_server(users: dict[str, Any]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for user_id, value in users.items():
        grouped.setdefault(server_of(user_id), {})[user_id] = value
    return grouped


class RemoteKeys:
    def __init__(self, client: FederationClient) -> None:
        self.client = client

    async def _ask(self, server: str, path: str, body: JsonDict) -> JsonDict:
        return await self.client.request(server, "POST", path, json=body, timeout_s=QUERY_TIMEOUT_S)

    async def _all(self, path: str, field: str, users: dict[str, Any]) -> tuple[dict[str, JsonDict], JsonDict]:
        grouped = _by_server(users)
        servers = sorted(grouped)
        answers = await asyncio.gather(*[self._ask(s, path, {field: grouped[s]}) for s in servers],
                                       return_exceptions=True)
        ok: dict[str, JsonDict] = {}
        failures: JsonDict = {}
        for server, answer in zip(servers, answers, strict=True):
            if isinstance(answer, MatrixError):
                failures[server] = {"errcode": answer.errcode, "error": answer.message[:300]}
            elif isinstance(answer, BaseException):
                raise answer
            else:
                ok[server] = answer
        return ok, failures

    async def query(self, users: dict[str, list[str]], response: JsonDict) -> JsonDict:
        """Fill ``response`` (device_keys, master_keys, self_signing_keys); return the failures."""
        ok, failures = await self._all("/_matrix/federation/v1/user/keys/query", "device_keys", users)
        for server, answer in ok.items():
            for field in ("device_keys", *CROSS_SIGNING_FIELDS):
                values = answer.get(field)
                for user_id, value in values.items() if isinstance(values, dict) else ():
                    if user_id in users and server_of(user_id) == server and isinstance(value, dict):
                        response.setdefault(field, {})[user_id] = value
        return failures

    async def claim(self, users: dict[str, dict[str, str]], result: JsonDict) -> JsonDict:
        """Fill ``result`` (user -> device -> key); return the failures."""
        ok, failures = await self._all("/_matrix/federation/v1/user/keys/claim", "one_time_keys", users)
        for server, answer in ok.items():
            values = answer.get("one_time_keys")
            for user_id, devices in values.items() if isinstance(values, dict) else ():
                if user_id not in users or server_of(user_id) != server or not isinstance(devices, dict):
                    continue
                for device_id, keys in devices.items():
                    if device_id in users[user_id] and isinstance(keys, dict):
                        result.setdefault(user_id, {})[device_id] = keys
        return failures

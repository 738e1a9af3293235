"""Our clients' ``/keys/query`` and ``/keys/claim`` for users of other servers.

The key service hands the remote users, grouped by server, to
:class:`RemoteKeys`, which asks each server concurrently
(``POST /user/keys/query`` / ``/user/keys/claim``) and merges what it answers
for *its own* users only (a server cannot speak for another's users).  A
server that fails is reported in ``failures`` under its name, as the spec says.

Device lists are cached (``remote_device_lists``): a user sharing a room with
one of ours (any membership) is asked for in full, and the answer kept until
an ``m.device_list_update`` or ``m.signing_key_update`` for them arrives
(:meth:`RemoteKeys.forget`, from the EDU handler); their next queries are
answered from the cache without asking their server.  Users nobody here shares
a room with are asked every time (no update would tell us of a change), and an
answer without devices is not kept (their server may not see us in a room yet).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from common.canonical_json import encode_canonical_json
from common.errors import MatrixError
from homeserver.federation.client import FederationClient
from homeserver.services.clock import Clock
from homeserver.services.federation_out import server_of
from homeserver.storage.remote_device_lists import RemoteDeviceLists

JsonDict = dict[str, Any]
QUERY_TIMEOUT_S = 10.0
CROSS_SIGNING_FIELDS = ("master_keys", "self_signing_keys")


def _by_server(users: dict[str, Any]) -> dict[str, dict[str, Any]]:
    grouped: dict[str, dict[str, Any]] = {}
    for user_id, value in users.items():
        grouped.setdefault(server_of(user_id), {})[user_id] = value
    return grouped


class RemoteKeys:
    def __init__(self, client: FederationClient, server_name: str, cache: RemoteDeviceLists,
                 tracked: Callable[[str], Awaitable[bool]], clock: Clock) -> None:
        self.client = client
        self.server_name = server_name
        self.cache = cache
        self.tracked = tracked  # whether updates of the user's devices reach us (a shared room)
        self.clock = clock

    async def forget(self, user_id: str) -> None:
        """The user's devices or cross-signing keys changed: the cached list is stale."""
        await self.cache.invalidate(self.server_name, user_id, self.clock.now_ms())

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
        tracked = {u for u in users if await self.tracked(u)}
        cached = await self.cache.get(self.server_name, sorted(tracked))
        for user_id, body in cached.items():
            _merge(response, user_id, json.loads(body), users[user_id])
        ask = {u: ([] if u in tracked else devices) for u, devices in users.items() if u not in cached}
        if not ask:
            return {}
        started = self.clock.now_ms()
        ok, failures = await self._all("/_matrix/federation/v1/user/keys/query", "device_keys", ask)
        for server, answer in ok.items():
            for user_id in (u for u in ask if server_of(u) == server):
                part = _part_of(answer, user_id)
                if part is None:
                    continue
                if user_id in tracked and part.get("device_keys"):
                    await self.cache.put(self.server_name, user_id, encode_canonical_json(part).decode(),
                                         self.clock.now_ms(), started)
                _merge(response, user_id, part, users[user_id])
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


def _part_of(answer: JsonDict, user_id: str) -> JsonDict | None:
    """What a server's ``user/keys/query`` answer holds for ``user_id`` (None: nothing)."""
    part: JsonDict = {}
    for field in ("device_keys", *CROSS_SIGNING_FIELDS):
        values = answer.get(field)
        value = values.get(user_id) if isinstance(values, dict) else None
        if isinstance(value, dict):
            part[field] = value
    return part or None


def _merge(response: JsonDict, user_id: str, part: JsonDict, devices: list[str]) -> None:
    """One user's keys into the client's answer; ``devices``: the device ids asked for (all if empty)."""
    for field, value in part.items():
        if field == "device_keys" and devices:
            value = {d: keys for d, keys in value.items() if d in devices}
        response.setdefault(field, {})[user_id] = value

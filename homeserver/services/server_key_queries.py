"""Other servers asking for our users' keys and devices (server-server API, "End-to-End Encryption").

``POST /user/keys/query``, ``POST /user/keys/claim`` and
``GET /user/devices/{userId}`` answer with the same services as the client
API, under the same privacy rule: a server sees the keys of our users who
share a room (in any membership state) with one of its users, or who were
looked up by one of them; anyone else is answered as if they had no devices.
One-time keys are claimed with the same atomic claim as for local users, so
each is still handed out at most once, and the per-claimer limit counts the
requesting server as one claimer.
"""

from __future__ import annotations

from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import parse_user_id
from homeserver.services.devices import DeviceService
from homeserver.services.federation_out import server_of
from homeserver.services.keys import KeyService

JsonDict = dict[str, Any]
# The claimer and querier name of a server in the key service (never a valid user id).
SERVER_REQUESTER = "server:"


class ServerKeyQueries:
    def __init__(self, server_name: str, keys: KeyService, devices: DeviceService, membership: Any) -> None:
        self.server_name = server_name
        self.keys = keys
        self.devices = devices
        self.membership = membership

    async def _visible_to(self, origin: str, user_ids: list[str]) -> set[str]:
        visible: set[str] = set()
        for user_id in user_ids:
            if server_of(user_id) != self.server_name:
                continue
            seen_by = await self.membership.users_sharing_a_room_in_any_state(user_id)
            seen_by |= await self.keys.repo.grantees(user_id)
            if any(server_of(u) == origin for u in seen_by):
                visible.add(user_id)
        return visible

    @staticmethod
    def _users(body: JsonDict, field: str) -> list[str]:
        value = body.get(field)
        if not isinstance(value, dict):
            raise MatrixError(400, Codes.BAD_JSON, f"{field} must be an object")
        return [u for u in value if isinstance(u, str)]

    def _only_local(self, body: JsonDict, field: str) -> JsonDict:
        users = self._users(body, field)
        foreign = [u for u in users if server_of(u) != self.server_name]
        if foreign:
            raise MatrixError(400, Codes.INVALID_PARAM, f"{foreign[0][:255]} is not a user of this server")
        return body

    async def query(self, origin: str, body: JsonDict) -> JsonDict:
        """POST /_matrix/federation/v1/user/keys/query"""
        body = self._only_local(body, "device_keys")
        visible = await self._visible_to(origin, self._users(body, "device_keys"))
        answer = await self.keys.query(SERVER_REQUESTER + origin, body, visible)
        answer.pop("failures", None)
        return answer

    async def claim(self, origin: str, body: JsonDict) -> JsonDict:
        """POST /_matrix/federation/v1/user/keys/claim"""
        body = self._only_local(body, "one_time_keys")
        visible = await self._visible_to(origin, self._users(body, "one_time_keys"))
        answer = await self.keys.claim(SERVER_REQUESTER + origin, body, visible)
        answer.pop("failures", None)
        return answer

    async def devices_of(self, origin: str, user_id: str) -> JsonDict:
        """GET /_matrix/federation/v1/user/devices/{userId}"""
        _, server = parse_user_id(user_id)
        if server != self.server_name:
            raise MatrixError(400, Codes.INVALID_PARAM, "The user is not a user of this server")
        result: JsonDict = {"user_id": user_id, "stream_id": 0, "devices": []}
        if user_id not in await self._visible_to(origin, [user_id]):
            return result
        keys = await self.keys.query(SERVER_REQUESTER + origin, {"device_keys": {user_id: []}}, {user_id})
        device_keys = keys["device_keys"].get(user_id, {})
        # The same clock as the stream_id of our m.device_list_update EDUs (homeserver/federation/edus.py).
        result["stream_id"] = self.keys.clock.now_ms()
        for device in await self.devices.list_json(user_id):
            entry: JsonDict = {"device_id": device["device_id"]}
            if device.get("display_name"):
                entry["device_display_name"] = device["display_name"]
            if device["device_id"] in device_keys:
                entry["keys"] = device_keys[device["device_id"]]
            result["devices"].append(entry)
        for field, name in (("master_keys", "master_key"), ("self_signing_keys", "self_signing_key")):
            if user_id in keys.get(field, {}):
                result[name] = keys[field][user_id]
        return result

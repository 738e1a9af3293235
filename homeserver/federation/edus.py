"""EDUs of incoming transactions, applied through the services (spec, "EDUs" of each module).

Each EDU type has one handler in a lookup table.  Every handler checks that
the users it names belong to the origin server and, where it concerns a room,
that they are joined to it per the room's current state (or, for presence
and device lists, share a room with one of our users); an EDU failing those
checks is logged and ignored, never applied.  Device-list changes of our own
users go out as ``m.device_list_update`` (:meth:`EduHandler.local_device_change`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from common.errors import MatrixError
from homeserver.services.federation_out import EduSink, remote_servers, server_of

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
MAX_ENTRIES_PER_EDU = 1000


class EduHandler:
    def __init__(self, server_name: str, services: Any, sink: EduSink) -> None:
        self.server_name = server_name
        self.s = services
        self.sink = sink
        self.table: dict[str, Callable[[str, JsonDict], Awaitable[None]]] = {
            "m.typing": self._typing,
            "m.receipt": self._receipt,
            "m.presence": self._presence,
            "m.direct_to_device": self._to_device,
            "m.device_list_update": self._device_list,
            "m.signing_key_update": self._signing_keys,
        }

    async def handle(self, origin: str, edu: JsonDict) -> None:
        edu_type, content = edu.get("edu_type"), edu.get("content")
        handler = self.table.get(edu_type) if isinstance(edu_type, str) else None
        if handler is None or not isinstance(content, dict):
            logger.info("ignored EDU %r from %s", str(edu_type)[:80], origin[:255])
            return
        try:
            await handler(origin, content)
        except MatrixError as exc:
            logger.info("refused %s EDU from %s: %s", edu_type, origin[:255], exc.message[:300])

    async def _typing(self, origin: str, content: JsonDict) -> None:
        room_id, user_id, typing = content.get("room_id"), content.get("user_id"), content.get("typing")
        if isinstance(room_id, str) and isinstance(user_id, str) and isinstance(typing, bool):
            await self.s.typing.set_remote_typing(origin, room_id, user_id, typing)

    async def _receipt(self, origin: str, content: JsonDict) -> None:
        for room_id, by_type in list(content.items())[:MAX_ENTRIES_PER_EDU]:
            if not isinstance(by_type, dict):
                continue
            for receipt_type, by_user in by_type.items():
                if not isinstance(by_user, dict):
                    continue
                for user_id, receipt in list(by_user.items())[:MAX_ENTRIES_PER_EDU]:
                    event_ids = receipt.get("event_ids") if isinstance(receipt, dict) else None
                    data = receipt.get("data") if isinstance(receipt, dict) else None
                    if not isinstance(event_ids, list) or not all(isinstance(e, str) for e in event_ids):
                        continue
                    try:
                        await self.s.receipts.apply_remote(origin, room_id, receipt_type, user_id, event_ids,
                                                           data if isinstance(data, dict) else {})
                    except MatrixError as exc:
                        logger.info("refused receipt of %s in %s from %s: %s", user_id[:255], room_id[:255],
                                    origin[:255], exc.message[:200])

    async def _presence(self, origin: str, content: JsonDict) -> None:
        updates = content.get("push")
        for update in updates[:MAX_ENTRIES_PER_EDU] if isinstance(updates, list) else []:
            if isinstance(update, dict):
                try:
                    await self.s.presence.apply_remote(origin, update)
                except MatrixError as exc:
                    logger.info("refused presence from %s: %s", origin[:255], exc.message[:200])

    async def _to_device(self, origin: str, content: JsonDict) -> None:
        await self.s.to_device.receive_remote(origin, content)

    async def _remote_user_changed(self, origin: str, user_id: Any, device_ids: list[str]) -> None:
        if not isinstance(user_id, str) or server_of(user_id) != origin:
            logger.info("refused a device-list EDU from %s about %s", origin[:255], str(user_id)[:255])
            return
        remote_keys = getattr(self.s.keys, "remote", None)
        if remote_keys is not None:
            await remote_keys.forget(user_id)  # the cached list is stale, whoever shares a room
        sharing = await self.s.rooms.users_sharing_a_room_in_any_state(user_id)
        if not any(server_of(u) == self.server_name for u in sharing):
            return  # nobody here sees that user's devices
        await self.s.keys.device_list_changed(user_id, device_ids)

    async def _device_list(self, origin: str, content: JsonDict) -> None:
        device_id = content.get("device_id")
        await self._remote_user_changed(origin, content.get("user_id"),
                                        [device_id] if isinstance(device_id, str) and len(device_id) <= 255 else [])

    async def _signing_keys(self, origin: str, content: JsonDict) -> None:
        await self._remote_user_changed(origin, content.get("user_id"), [])

    # ------------------------------------------------------------- outgoing
    async def local_device_change(self, user_id: str, device_ids: list[str], deleted: bool) -> None:
        """KeyService change listener: our user's devices changed; tell the servers sharing a room."""
        if server_of(user_id) != self.server_name:
            return
        sharing = await self.s.rooms.users_sharing_a_room_in_any_state(user_id)
        servers = remote_servers(sharing, self.server_name)
        if not servers:
            return
        now = self.s.clock.now_ms()
        for device_id in device_ids or []:
            content: JsonDict = {"user_id": user_id, "device_id": device_id, "stream_id": now, "prev_id": []}
            if deleted:
                content["deleted"] = True
            await self.sink.queue_edu(servers, "m.device_list_update", content)
        if not device_ids:  # cross-signing keys or signatures: the receiver resyncs the user
            await self.sink.queue_edu(servers, "m.signing_key_update", {"user_id": user_id})

"""To-device messages: ``PUT /sendToDevice``, delivered once per device by /sync.

A message stays queued until the device acknowledges it by syncing with a
``since`` token past its position; then it is deleted.
"""

from __future__ import annotations

import hashlib
from typing import Any

from common.errors import Codes, MatrixError
from common.identifiers import is_valid_device_id, parse_user_id
from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.federation_out import EduSink
from homeserver.storage.accounts import DeviceRepository
from homeserver.storage.to_device import ToDeviceRepository

JsonDict = dict[str, Any]

MAX_PER_SYNC = 100
MAX_TARGETS = 1000
TXN_RETENTION_MS = 24 * 3600 * 1000
# Queues are bounded: a device that never syncs cannot grow its queue without
# limit, and one sender cannot fill another user's queue on their own.
MAX_QUEUED_PER_DEVICE = 1000
MAX_QUEUED_PER_SENDER = 100
# Devices whose emptied position is remembered (all are forgotten when full).
_GONE_MAX = 100_000


class ToDeviceService:
    def __init__(self, repo: ToDeviceRepository, devices: DeviceRepository, notifier: Notifier,
                 clock: Clock, server_name: str, max_per_device: int = MAX_QUEUED_PER_DEVICE,
                 max_per_sender: int = MAX_QUEUED_PER_SENDER) -> None:
        self.max_per_device = max_per_device
        self.max_per_sender = max_per_sender
        self.repo = repo
        self.devices = devices
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        # Messages for users of other servers leave as m.direct_to_device (set by the composition root).
        self.federation: EduSink | None = None
        # (user, device) -> a position at or below which the device has no message left (deleted
        # by an acknowledgement, or none was ever queued): a fact about the database, true for
        # every instance, so a sync at or below it neither deletes nor reads.
        self._gone: dict[tuple[str, str], int] = {}

    async def send(self, sender: str, sender_device: str, event_type: str, txn_id: str, messages: Any) -> None:
        if not isinstance(messages, dict):
            raise MatrixError(400, Codes.BAD_JSON, "messages must be an object")
        queued: list[tuple[str, str, JsonDict]] = []
        remote: dict[str, dict[str, Any]] = {}
        requested = 0  # device entries named, existing or not: a request's size is bounded either way
        for user_id, per_device in messages.items():
            _, server = parse_user_id(user_id)
            if server != self.server_name and self.federation is None:
                raise MatrixError(400, Codes.INVALID_PARAM, "Federation is off: users must be local")
            if not isinstance(per_device, dict):
                raise MatrixError(400, Codes.BAD_JSON, "messages must map user ids to device maps")
            requested += len(per_device)
            if requested > MAX_TARGETS:
                raise MatrixError(400, Codes.INVALID_PARAM, f"At most {MAX_TARGETS} devices per request")
            if server != self.server_name:
                if not all(isinstance(c, dict) for c in per_device.values()):
                    raise MatrixError(400, Codes.BAD_JSON, "to-device content must be an object")
                if not all(d == "*" or is_valid_device_id(d) for d in per_device):
                    raise MatrixError(400, Codes.INVALID_PARAM, "Invalid device id")
                remote.setdefault(server, {})[user_id] = per_device
                continue
            existing = {d.device_id for d in await self.devices.list_for_user(user_id)}
            for device_id, content in per_device.items():
                if not isinstance(content, dict):
                    raise MatrixError(400, Codes.BAD_JSON, "to-device content must be an object")
                if device_id == "*":
                    targets = sorted(existing)
                elif is_valid_device_id(device_id):
                    # A device that does not exist gets nothing (as the spec has it):
                    # a queue for it would never be read nor deleted.
                    targets = [device_id] if device_id in existing else []
                else:
                    raise MatrixError(400, Codes.INVALID_PARAM, "Invalid device id")
                queued += [(user_id, target, content) for target in targets]
                if len(queued) > MAX_TARGETS:
                    raise MatrixError(400, Codes.INVALID_PARAM, f"At most {MAX_TARGETS} devices per request")
        await self._check_quota(sender, queued)
        if queued:
            pos = await self.repo.enqueue(sender, sender_device, txn_id, event_type, queued, self.clock.now_ms())
            if pos:
                await self.notifier.notify({user_id for user_id, _, _ in queued}, "to_device", pos)
        if remote and self.federation is not None:
            # The same id for a repeated client transaction: the destination applies it once.
            message_id = hashlib.sha256(f"{sender}|{sender_device}|{txn_id}".encode()).hexdigest()[:32]
            for server, server_messages in sorted(remote.items()):
                await self.federation.queue_edu({server}, "m.direct_to_device", {
                    "sender": sender, "type": event_type, "message_id": message_id, "messages": server_messages})

    async def receive_remote(self, origin: str, content: JsonDict) -> None:
        """An ``m.direct_to_device`` EDU: from ``origin``'s own user, delivered to our users' devices."""
        sender, event_type, message_id = content.get("sender"), content.get("type"), content.get("message_id")
        if not isinstance(sender, str) or parse_user_id(sender)[1] != origin:
            raise MatrixError(403, Codes.FORBIDDEN, f"{origin} cannot send to-device messages as {str(sender)[:255]}")
        if not isinstance(event_type, str) or not isinstance(message_id, str) or not message_id:
            raise MatrixError(400, Codes.BAD_JSON, "m.direct_to_device needs type and message_id")
        messages = content.get("messages")
        if not isinstance(messages, dict):
            raise MatrixError(400, Codes.BAD_JSON, "messages must be an object")
        local = {u: m for u, m in messages.items() if isinstance(u, str) and u.endswith(":" + self.server_name)}
        await self.send(sender, "", event_type, f"fed:{message_id[:200]}", local)

    async def _check_quota(self, sender: str, queued: list[tuple[str, str, JsonDict]]) -> None:
        """M_LIMIT_EXCEEDED when a target device's queue, or this sender's share of it, is full."""
        adding: dict[tuple[str, str], int] = {}
        for user_id, device_id, _ in queued:
            adding[(user_id, device_id)] = adding.get((user_id, device_id), 0) + 1
        for user_id in sorted({u for u, _ in adding}):
            counts = await self.repo.queued_counts(user_id, sender)
            for (target_user, device_id), extra in adding.items():
                if target_user != user_id:
                    continue
                total, from_sender = counts.get(device_id, (0, 0))
                if total + extra > self.max_per_device or from_sender + extra > self.max_per_sender:
                    raise MatrixError(
                        429, Codes.LIMIT_EXCEEDED,
                        f"The to-device queue of {user_id} {device_id} is full until it syncs",
                        extra={"retry_after_ms": 60_000}, headers={"Retry-After": "60"},
                    )

    async def collect(self, user_id: str, device_id: str, since: int | None, upto: int
                      ) -> tuple[list[JsonDict], int]:
        """Messages for this device in (since, upto]; returns them and the position to resume from.

        Syncing with ``since`` acknowledges (deletes) everything at or before it.
        """
        after = since or 0
        key = (user_id, device_id)
        gone = self._gone.get(key, 0)
        if since and since > gone:
            await self.repo.acknowledge(user_id, device_id, since)
            gone = min(since, upto)  # a later message may still take a position in (upto, since]
        # Single writer: nothing can appear at or below ``upto`` once it is read.
        rows = await self.repo.pending(user_id, device_id, after, upto, MAX_PER_SYNC + 1) if after < upto else []
        if not rows:
            gone = max(gone, upto)  # acknowledged up to ``after`` (or never queued), none since
        if gone and gone != self._gone.get(key):
            if len(self._gone) >= _GONE_MAX:
                self._gone.clear()
            self._gone[key] = gone
        next_pos = upto
        if len(rows) > MAX_PER_SYNC:
            # Stop before the first position not delivered whole.
            cut = rows[MAX_PER_SYNC].stream_pos
            if rows[0].stream_pos == cut:
                rows = [r for r in rows if r.stream_pos == cut]
                next_pos = cut
            else:
                rows = [r for r in rows if r.stream_pos < cut]
                next_pos = cut - 1
        events = [{"sender": r.sender, "type": r.type, "content": r.content} for r in rows]
        return events, next_pos

    async def device_deleted(self, user_id: str, device_ids: list[str]) -> None:
        await self.repo.delete_for_devices(user_id, device_ids)

    async def cleanup(self) -> None:
        await self.repo.delete_txns_older_than(self.clock.now_ms() - TXN_RETENTION_MS)

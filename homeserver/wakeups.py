"""Wake-up messages between the instances of a deployment, and the two buses that carry them.

A :class:`WakeUp` says *what* moved, not *who* is affected: a room (whose
waiting members each instance knows from its own room index), the stream
and position, and only the few user ids that a room cannot name (an
invited user, the recipient of a to-device message).  So a message stays
small however many users a room has.

* :class:`RedisBus` - Redis pub/sub on one channel per deployment.
* :class:`DatabaseBus` - without Redis, a short-lived ``wake_queue`` table
  that every instance polls; it reads only the rows of the last moments, so
  the cost follows the number of changes, not the number of users.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

logger = logging.getLogger(__name__)

Deliver = Callable[["WakeUp | None"], None]  # None: "something may have been lost, wake everyone"


@dataclass(frozen=True)
class WakeUp:
    users: tuple[str, ...] = ()
    room_id: str | None = None
    stream: str | None = None
    position: int | None = None
    origin: str = ""

    def encode(self) -> str:
        body: dict[str, Any] = {"o": self.origin}
        if self.users:
            body["u"] = list(self.users)
        if self.room_id is not None:
            body["r"] = self.room_id
        if self.stream is not None:
            body["s"] = self.stream
        if self.position is not None:
            body["p"] = self.position
        return json.dumps(body, separators=(",", ":"))

    @staticmethod
    def decode(raw: str | bytes) -> WakeUp | None:
        try:
            body = json.loads(raw)
        except (ValueError, TypeError):
            return None
        if not isinstance(body, dict):
            return None
        users = body.get("u", [])
        room, stream, position = body.get("r"), body.get("s"), body.get("p")
        if not isinstance(users, list) or not all(isinstance(u, str) for u in users):
            return None
        if room is not None and not isinstance(room, str):
            return None
        return WakeUp(
            tuple(users), room, stream if isinstance(stream, str) else None,
            position if isinstance(position, int) else None, str(body.get("o", "")),
        )


class WakeBus(Protocol):
    async def publish(self, wakeup: WakeUp) -> None: ...
    async def run(self, deliver: Deliver, has_waiters: Callable[[], bool]) -> None: ...


class RedisBus:
    def __init__(self, redis: Any, channel: str) -> None:
        self.redis = redis
        self.channel = channel

    async def publish(self, wakeup: WakeUp) -> None:
        await self.redis.publish(self.channel, wakeup.encode())

    async def run(self, deliver: Deliver, has_waiters: Callable[[], bool]) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "message":
                        wakeup = WakeUp.decode(message["data"])
                        if wakeup is not None:
                            deliver(wakeup)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Redis wake-up listener failed; retrying")
                deliver(None)  # a wake-up may have been lost while disconnected
                await asyncio.sleep(1.0)


class WakeQueue(Protocol):
    async def append(self, origin: str, body: str, now_ms: int) -> None: ...
    async def since(self, created_ms: int) -> list[tuple[int, str, str]]: ...
    async def delete_older_than(self, created_ms: int) -> int: ...


class DatabaseBus:
    """Polls the rows of the last ``lookback_ms`` (ids may commit out of order: dedupe by id)."""

    def __init__(self, queue: WakeQueue, origin: str, poll_interval_s: float = 0.25,
                 lookback_ms: int = 3000, keep_ms: int = 60_000) -> None:
        self.queue = queue
        self.origin = origin
        self.poll_interval_s = poll_interval_s
        self.lookback_ms = lookback_ms
        self.keep_ms = keep_ms

    async def publish(self, wakeup: WakeUp) -> None:
        await self.queue.append(self.origin, wakeup.encode(), _now_ms())

    async def run(self, deliver: Deliver, has_waiters: Callable[[], bool]) -> None:
        seen: dict[int, int] = {}  # row id -> when we saw it
        watching_since: int | None = None
        last_cleanup = 0
        failed = False
        while True:
            await asyncio.sleep(self.poll_interval_s)
            now = _now_ms()
            if not has_waiters():
                watching_since, seen = None, {}
                continue
            if watching_since is None:
                watching_since = now - self.lookback_ms  # waiters built their answer after this
            try:
                rows = await self.queue.since(max(watching_since, now - self.lookback_ms))
                if now - last_cleanup > self.keep_ms // 4:
                    last_cleanup = now
                    await self.queue.delete_older_than(now - self.keep_ms)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("polling wake-ups from the database failed")
                failed = True
                continue
            if failed:
                failed = False
                deliver(None)
            for row_id, origin, body in rows:
                if row_id in seen:
                    continue
                seen[row_id] = now
                if origin == self.origin:
                    continue  # woken locally when it was published
                wakeup = WakeUp.decode(body)
                if wakeup is not None:
                    deliver(wakeup)
            horizon = now - 2 * self.lookback_ms
            seen = {i: t for i, t in seen.items() if t >= horizon}


def _now_ms() -> int:
    return int(time.time() * 1000)

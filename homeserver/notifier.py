"""Wakes long-polling /sync requests when something for their user changes.

Writers call :meth:`Notifier.notify` with the users a change concerns,
*after* their transaction committed.  Waiters register with
:meth:`Notifier.listen` *before* they look for new data, so a change that
lands between the check and the wait is never missed.

Across instances the wake-up travels over Redis pub/sub when configured;
otherwise each instance polls the stream positions in the database and
wakes all of its local waiters when any stream advanced (they re-check and
go back to sleep if nothing concerned them).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

PositionsReader = Callable[[], Awaitable[dict[str, int]]]


class Waiter:
    def __init__(self) -> None:
        self._event = asyncio.Event()

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout_s: float) -> bool:
        """True if woken, False on timeout."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout_s)
        except TimeoutError:
            return False
        return True


class Notifier:
    def __init__(self, channel: str, redis: Any = None,
                 positions: PositionsReader | None = None, poll_interval_s: float = 0.25) -> None:
        self.channel = channel
        self.redis = redis
        self.positions = positions
        self.poll_interval_s = poll_interval_s
        self._waiters: dict[str, set[Waiter]] = {}
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Long-polls woken so far (read by /metrics).
        self.wakeups = 0

    # ------------------------------------------------------------ local side
    @contextlib.contextmanager
    def listen(self, user_id: str) -> Iterator[Waiter]:
        waiter = Waiter()
        if self._stopping:
            waiter.wake()
        self._waiters.setdefault(user_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[user_id]

    def _wake_local(self, user_ids: Iterable[str] | None) -> None:
        if user_ids is None:
            targets: Iterable[set[Waiter]] = list(self._waiters.values())
        else:
            targets = [self._waiters[u] for u in set(user_ids) if u in self._waiters]
        for waiters in targets:
            for waiter in list(waiters):
                waiter.wake()
                self.wakeups += 1

    def wake_all(self) -> None:
        """Shutdown: every open long-poll answers now."""
        self._stopping = True
        self._wake_local(None)

    @property
    def stopping(self) -> bool:
        """True once shutdown began: long-polls must answer instead of waiting."""
        return self._stopping

    @property
    def waiting_users(self) -> int:
        return len(self._waiters)

    # ----------------------------------------------------------- publishing
    async def notify(self, user_ids: Iterable[str]) -> None:
        """Wake the given users' long-polls here and on every other instance."""
        users = list(set(user_ids))
        if not users:
            return
        self._wake_local(users)
        if self.redis is not None:
            try:
                await self.redis.publish(self.channel, json.dumps(users))
            except Exception:
                logger.exception("could not publish a wake-up to Redis")

    # ------------------------------------------------------- cross-instance
    async def start(self) -> None:
        if self.redis is not None:
            self._task = asyncio.create_task(self._listen_redis())
        elif self.positions is not None:
            self._task = asyncio.create_task(self._poll_database())

    async def stop(self) -> None:
        self.wake_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

    async def _listen_redis(self) -> None:
        while True:
            try:
                pubsub = self.redis.pubsub()
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") != "message":
                        continue
                    try:
                        users = json.loads(message["data"])
                    except (ValueError, TypeError):
                        continue
                    if isinstance(users, list):
                        self._wake_local(str(u) for u in users)
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("Redis wake-up listener failed; retrying")
                # Wake everyone: a wake-up may have been lost while disconnected.
                self._wake_local(None)
                await asyncio.sleep(1.0)

    async def _poll_database(self) -> None:
        assert self.positions is not None
        last: dict[str, int] | None = None
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if not self._waiters:
                last = None
                continue
            try:
                current = await self.positions()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("polling stream positions failed")
                continue
            if last is not None and current != last:
                self._wake_local(None)
            last = current

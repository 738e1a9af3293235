"""Wakes long-polling /sync requests when something for their user changes.

Writers call :meth:`Notifier.notify` (changes for some users) or
:meth:`Notifier.notify_room` (a change in a room) *after* their transaction
committed.  Waiters register with :meth:`Notifier.listen` *before* they look
for new data, so a change that lands between the check and the wait is never
missed; once a waiter has built its answer it tells the notifier its rooms
(:meth:`Notifier.watch`), which keeps a room -> waiting users index.  Until
then it is *pending* and any room's wake-up wakes it.

Across instances a small :class:`homeserver.wakeups.WakeUp` travels over
Redis pub/sub when configured, else through the database's wake-up queue;
the receiving instance wakes only the users it has waiting in that room
(or named in the message).  Each waiter records which streams moved.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Iterable, Iterator

from homeserver.wakeups import WakeBus, WakeUp

logger = logging.getLogger(__name__)


class Waiter:
    def __init__(self, user_id: str) -> None:
        self.user_id = user_id
        self.rooms: frozenset[str] | None = None  # None: pending (rooms not known yet)
        self.moved: dict[str, int] = {}  # stream -> highest position it was woken for
        self._event = asyncio.Event()

    def wake(self, stream: str | None = None, position: int | None = None) -> None:
        if stream is not None and position is not None:
            self.moved[stream] = max(position, self.moved.get(stream, position))
        self._event.set()

    @property
    def woken(self) -> bool:
        return self._event.is_set()

    async def wait(self, timeout_s: float) -> None:
        """Until woken or ``timeout_s`` passed (the caller rebuilds its answer either way)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout_s)


class Notifier:
    def __init__(self, bus: WakeBus | None = None, origin: str = "") -> None:
        self.bus = bus
        self.origin = origin
        self._waiters: dict[str, set[Waiter]] = {}
        self._room_users: dict[str, Counter[str]] = {}  # room -> waiting user -> waiters watching it
        self._pending: set[Waiter] = set()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        # Long-polls woken so far (read by /metrics).
        self.wakeups = 0
        self.woken: Counter[str] = Counter()  # user -> wake-ups delivered (observability, tests)

    # ------------------------------------------------------------ local side
    @contextlib.contextmanager
    def listen(self, user_id: str) -> Iterator[Waiter]:
        waiter = Waiter(user_id)
        if self._stopping:
            waiter.wake()
        self._waiters.setdefault(user_id, set()).add(waiter)
        self._pending.add(waiter)
        try:
            yield waiter
        finally:
            self._unwatch(waiter)
            self._pending.discard(waiter)
            waiters = self._waiters.get(user_id)
            if waiters is not None:
                waiters.discard(waiter)
                if not waiters:
                    del self._waiters[user_id]

    def watch(self, waiter: Waiter, room_ids: Iterable[str]) -> None:
        """The waiter's user is joined to ``room_ids`` (as of the answer it just built)."""
        self._unwatch(waiter)
        waiter.rooms = frozenset(room_ids)
        self._pending.discard(waiter)
        for room_id in waiter.rooms:
            self._room_users.setdefault(room_id, Counter())[waiter.user_id] += 1

    def _unwatch(self, waiter: Waiter) -> None:
        for room_id in waiter.rooms or ():
            users = self._room_users.get(room_id)
            if users is None:
                continue
            users[waiter.user_id] -= 1
            if users[waiter.user_id] <= 0:
                del users[waiter.user_id]
            if not users:
                del self._room_users[room_id]
        waiter.rooms = None

    def _wake_users(self, user_ids: Iterable[str], stream: str | None, position: int | None) -> None:
        for user_id in set(user_ids):
            for waiter in list(self._waiters.get(user_id, ())):
                waiter.wake(stream, position)
                self.woken[user_id] += 1
                self.wakeups += 1

    def _deliver(self, wakeup: WakeUp | None) -> None:
        if wakeup is None:
            self._wake_users(list(self._waiters), None, None)
            return
        targets = set(wakeup.users)
        if wakeup.room_id is not None:
            targets.update(self._room_users.get(wakeup.room_id, ()))
            targets.update(w.user_id for w in self._pending)
        self._wake_users(targets, wakeup.stream, wakeup.position)

    def wake_all(self) -> None:
        """Shutdown: every open long-poll answers now."""
        self._stopping = True
        self._deliver(None)

    @property
    def stopping(self) -> bool:
        """True once shutdown began: long-polls must answer instead of waiting."""
        return self._stopping

    @property
    def waiting_users(self) -> int:
        return len(self._waiters)

    @property
    def pending_waiters(self) -> int:
        return len(self._pending)

    def users_waiting_in(self, room_id: str) -> set[str]:
        return set(self._room_users.get(room_id, ()))

    # ----------------------------------------------------------- publishing
    async def notify(self, user_ids: Iterable[str], stream: str | None = None,
                     position: int | None = None) -> None:
        """Wake the given users' long-polls here and on every other instance."""
        users = tuple(sorted(set(user_ids)))
        if not users:
            return
        self._wake_users(users, stream, position)
        await self._publish(WakeUp(users, None, stream, position, self.origin))

    async def notify_room(self, room_id: str, members: Iterable[str], also: Iterable[str] = (),
                          stream: str = "events", position: int | None = None) -> None:
        """A change in ``room_id``: wake its ``members`` here, and its waiting users everywhere.

        ``also`` names users the room index cannot know (an invited or newly
        joined user); only they travel in the message.
        """
        extra = tuple(sorted(set(also)))
        self._wake_users({*members, *extra}, stream, position)
        await self._publish(WakeUp(extra, room_id, stream, position, self.origin))

    async def _publish(self, wakeup: WakeUp) -> None:
        if self.bus is None:
            return
        try:
            await self.bus.publish(wakeup)
        except Exception:
            logger.exception("could not publish a wake-up to the other instances")

    # ------------------------------------------------------- cross-instance
    async def start(self) -> None:
        if self.bus is not None:
            self._task = asyncio.create_task(self.bus.run(self._deliver, lambda: bool(self._waiters)))

    async def stop(self) -> None:
        self.wake_all()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task

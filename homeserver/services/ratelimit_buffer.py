"""Rate-limit counters kept in the database, counted in memory between short syncs.

Counting every request with an upsert and a read of the shared row put one
database transaction on every send, login and registration, however high
the limits.  :class:`BufferedCounters` keeps each bucket's count of the
current window in memory and adds the hits to the shared row at most once
per ``sync_ms`` (and on the first hit of a window), reading back the total
of every instance.  So one instance counts exactly; several instances
sharing the database without Redis see each other's hits within
``sync_ms``; with Redis the counters stay in Redis (exact, one round trip).
At most ``sync_ms`` of hits are not yet in the database when a process
stops, which only makes a limit that much more lenient once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from homeserver.services.clock import Clock

# Prune windows that ended once this many buckets are held.
_PRUNE_AT = 10_000


class SharedCounters(Protocol):
    async def add(self, bucket: str, window_start: int, hits: int) -> int: ...
    async def count(self, bucket: str, window_start: int) -> int: ...
    async def reset(self, bucket: str) -> None: ...
    async def cleanup(self, older_than: int) -> int: ...


@dataclass
class _Bucket:
    window_start: int
    window_end: int
    shared: int = 0  # the shared row's total at the last sync (every instance's hits)
    unsynced: int = 0  # hits here not yet added to it (including those being added)
    synced_ms: int | None = None
    syncing: bool = False


class BufferedCounters:
    def __init__(self, store: SharedCounters, clock: Clock, sync_ms: int = 1000) -> None:
        self.store = store
        self.clock = clock
        self.sync_ms = sync_ms
        self._buckets: dict[str, _Bucket] = {}

    def held(self) -> int:
        """Buckets held in memory (tests, observability)."""
        return len(self._buckets)

    async def hit(self, bucket: str, window_start: int, period_ms: int) -> int:
        now = self.clock.now_ms()
        state = self._buckets.get(bucket)
        if state is None or state.window_start != window_start:
            if len(self._buckets) >= _PRUNE_AT:
                self._prune(now)
            state = self._buckets[bucket] = _Bucket(window_start, window_start + period_ms)
        state.unsynced += 1
        if not state.syncing and (state.synced_ms is None or now - state.synced_ms >= self.sync_ms):
            await self._sync(bucket, state, now)
        return state.shared + state.unsynced

    async def _sync(self, bucket: str, state: _Bucket, now: int) -> None:
        adding = state.unsynced
        state.syncing = True
        try:
            total = await self.store.add(bucket, state.window_start, adding)
        finally:
            state.syncing = False
        state.unsynced -= adding
        state.shared = total
        state.synced_ms = now

    async def count(self, bucket: str, window_start: int) -> int:
        state = self._buckets.get(bucket)
        local = state.unsynced if state is not None and state.window_start == window_start else 0
        return await self.store.count(bucket, window_start) + local

    async def reset(self, bucket: str) -> None:
        self._buckets.pop(bucket, None)
        await self.store.reset(bucket)

    async def cleanup(self, older_than: int) -> int:
        self._prune(self.clock.now_ms())
        return await self.store.cleanup(older_than)

    def _prune(self, now: int) -> None:
        self._buckets = {k: b for k, b in self._buckets.items() if b.window_end > now or b.syncing}

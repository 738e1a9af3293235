"""Rate limiting per IP and per account, in the database or in Redis.

Every instance of a deployment sees the same counts: in Redis, or in the
database behind a short in-memory buffer (:mod:`homeserver.services.ratelimit_buffer`).
Fixed windows of ``period_ms``; an exceeded limit answers
``M_LIMIT_EXCEEDED`` with ``retry_after_ms`` until the window ends.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Protocol

from common.errors import MatrixError, limit_exceeded
from homeserver.services.clock import Clock
from homeserver.storage.ratelimits import RateLimitRepository

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Limit:
    name: str
    per_period: int
    period_ms: int = 60_000


def overridden(default: Limit, override: tuple[int, int] | None) -> Limit | None:
    """``default`` as an admin's (messages per second, burst) override changes it; None = unlimited (0/0)."""
    if override is None:
        return default
    per_second, burst = override
    if per_second == 0 and burst == 0:
        return None
    return Limit(default.name + ":override", max(per_second * 60, burst), 60_000)


class CounterStore(Protocol):
    async def hit(self, bucket: str, window_start: int, period_ms: int) -> int: ...
    async def count(self, bucket: str, window_start: int) -> int: ...
    async def reset(self, bucket: str) -> None: ...
    async def cleanup(self, older_than: int) -> int: ...


class DatabaseCounters:
    def __init__(self, repo: RateLimitRepository) -> None:
        self.repo = repo

    async def hit(self, bucket: str, window_start: int, period_ms: int) -> int:
        del period_ms
        return await self.repo.hit(bucket, window_start)

    async def add(self, bucket: str, window_start: int, hits: int) -> int:
        return await self.repo.hit(bucket, window_start, hits)

    async def count(self, bucket: str, window_start: int) -> int:
        return await self.repo.count(bucket, window_start)

    async def reset(self, bucket: str) -> None:
        await self.repo.reset(bucket)

    async def cleanup(self, older_than: int) -> int:
        return await self.repo.delete_older_than(older_than)


class RedisCounters:
    """Counters in Redis: INCR on a key per window, expiring with the window."""

    def __init__(self, redis: object, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    async def hit(self, bucket: str, window_start: int, period_ms: int) -> int:
        key = f"{self.prefix}rl:{bucket}:{window_start}"
        pipe = self.redis.pipeline()  # type: ignore[attr-defined]
        pipe.incr(key)
        pipe.pexpire(key, period_ms * 2)
        count, _ = await pipe.execute()
        return int(count)

    async def count(self, bucket: str, window_start: int) -> int:
        value = await self.redis.get(f"{self.prefix}rl:{bucket}:{window_start}")  # type: ignore[attr-defined]
        return int(value or 0)

    async def reset(self, bucket: str) -> None:
        pattern = f"{self.prefix}rl:{bucket}:*"
        async for key in self.redis.scan_iter(match=pattern):  # type: ignore[attr-defined]
            await self.redis.delete(key)  # type: ignore[attr-defined]

    async def cleanup(self, older_than: int) -> int:
        del older_than
        return 0  # keys expire by themselves


class FallbackCounters:
    """Redis counters that fall back to the database while Redis is unreachable.

    An unreachable Redis used to turn every rate-limited request into a 500;
    now the counts continue in the database (all instances share it) and one
    warning is logged per outage.
    """

    def __init__(self, primary: CounterStore, fallback: CounterStore) -> None:
        self.primary = primary
        self.fallback = fallback
        self._failing = False

    def _failed(self, exc: Exception) -> None:
        if not self._failing:
            logger.warning("rate-limit counters: Redis unreachable (%s); counting in the database",
                           type(exc).__name__)
        self._failing = True

    async def hit(self, bucket: str, window_start: int, period_ms: int) -> int:
        try:
            count = await self.primary.hit(bucket, window_start, period_ms)
        except Exception as exc:
            self._failed(exc)
            return await self.fallback.hit(bucket, window_start, period_ms)
        self._failing = False
        return count

    async def count(self, bucket: str, window_start: int) -> int:
        try:
            return await self.primary.count(bucket, window_start)
        except Exception as exc:
            self._failed(exc)
            return await self.fallback.count(bucket, window_start)

    async def reset(self, bucket: str) -> None:
        try:
            await self.primary.reset(bucket)
        except Exception as exc:
            self._failed(exc)
        await self.fallback.reset(bucket)

    async def cleanup(self, older_than: int) -> int:
        return await self.fallback.cleanup(older_than)


class RateLimiter:
    def __init__(
        self, counters: CounterStore, clock: Clock, enabled: bool = True, namespace: str = ""
    ) -> None:
        self.counters = counters
        # Keeps deployments that share one database or Redis apart.
        self.namespace = namespace
        self.clock = clock
        self.enabled = enabled

    async def check(self, limit: Limit, key: str) -> None:
        """Count one action for ``key``; raise M_LIMIT_EXCEEDED past the limit."""
        if not self.enabled or limit.per_period <= 0:
            return
        now = self.clock.now_ms()
        window_start = now - now % limit.period_ms
        bucket = self._bucket(limit, key)
        hits = await self.counters.hit(bucket, window_start, limit.period_ms)
        if hits > limit.per_period:
            raise limit_exceeded(window_start + limit.period_ms - now)

    async def ensure_below(self, limit: Limit, key: str) -> None:
        """Raise M_LIMIT_EXCEEDED if ``key`` has used up ``limit`` in this window, counting nothing.

        With :meth:`record` this limits failures only (failed logins):
        check before the attempt, record when it failed.
        """
        if not self.enabled or limit.per_period <= 0:
            return
        now = self.clock.now_ms()
        window_start = now - now % limit.period_ms
        if await self.counters.count(self._bucket(limit, key), window_start) >= limit.per_period:
            raise limit_exceeded(window_start + limit.period_ms - now)

    async def record(self, limit: Limit, key: str) -> None:
        """Count one event for ``key`` without refusing anything."""
        if not self.enabled or limit.per_period <= 0:
            return
        now = self.clock.now_ms()
        await self.counters.hit(self._bucket(limit, key), now - now % limit.period_ms, limit.period_ms)

    async def reset(self, limit: Limit, key: str) -> None:
        await self.counters.reset(self._bucket(limit, key))

    def _bucket(self, limit: Limit, key: str) -> str:
        return f"{self.namespace}|{limit.name}:{key}"[:255]

    async def cleanup(self) -> int:
        """Forget windows that ended more than an hour ago."""
        return await self.counters.cleanup(self.clock.now_ms() - 3_600_000)


__all__ = ["Limit", "MatrixError", "RateLimiter", "DatabaseCounters", "RedisCounters", "FallbackCounters"]

"""Prometheus metrics of one homeserver (``prometheus-client``, one registry per homeserver).

Series (all prefixed ``parley_``):

* ``http_requests_total{method,endpoint,status}`` and
  ``http_request_duration_seconds{method,endpoint}``: per route template
  (``/_matrix/client/v3/rooms/{room_id}/send/...``), unmatched paths as ``other``;
  ``http_requests_in_flight``;
* ``sync_waiters`` (users with an open long-poll) and ``notifier_wakeups_total``;
* ``event_persist_seconds``: writing events (auth checks, insert, commit);
* ``db_query_seconds``: raw SQL statements; ``db_pool_connections{state}``
  (``open``, ``idle``, ``max``; SQLite reports one open connection);
* ``redis_up``: 1 when the last ping answered, 0 when it failed (absent without Redis).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from homeserver.notifier import Notifier
from homeserver.storage.database import Database

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_FAST = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_HTTP = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _LiveValues(Collector):
    """Values read at scrape time from the objects that own them."""

    def __init__(self, notifier: Notifier, database: Database) -> None:
        self.notifier = notifier
        self.database = database

    def collect(self) -> Iterator[Metric]:
        waiters = GaugeMetricFamily("parley_sync_waiters", "Users with an open /sync long-poll")
        waiters.add_metric([], self.notifier.waiting_users)
        yield waiters
        wakeups = CounterMetricFamily("parley_notifier_wakeups", "Long-polls woken by stream changes")
        wakeups.add_metric([], self.notifier.wakeups)
        yield wakeups
        pool = GaugeMetricFamily("parley_db_pool_connections", "Database pool connections",
                                 labels=["state"])
        stats = self._pool_stats()
        open_, idle, most = stats if stats is not None else (1, 0, 1)
        for state, value in (("open", open_), ("idle", idle), ("max", most)):
            pool.add_metric([state], value)
        yield pool

    def _pool_stats(self) -> tuple[int, int, int] | None:
        try:
            with self.database.activated():
                return self.database.pool_stats()
        except Exception:  # not connected (yet)
            return None


class Metrics:
    def __init__(self, notifier: Notifier, database: Database, redis: Any = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.redis = redis
        r = self.registry
        self.requests = Counter("parley_http_requests", "HTTP requests", ["method", "endpoint", "status"],
                                registry=r)
        self.latency = Histogram("parley_http_request_duration_seconds", "HTTP request latency",
                                 ["method", "endpoint"], buckets=_HTTP, registry=r)
        self.in_flight = Gauge("parley_http_requests_in_flight", "HTTP requests being served", registry=r)
        self.persist = Histogram("parley_event_persist_seconds", "Time to persist events", buckets=_FAST,
                                 registry=r)
        self.queries = Histogram("parley_db_query_seconds", "Raw SQL statement time", buckets=_FAST,
                                 registry=r)
        self.redis_up = Gauge("parley_redis_up", "1 if Redis answered the last ping", registry=r) \
            if redis is not None else None
        r.register(_LiveValues(notifier, database))
        database.query_observers.append(self.queries.observe)

    def observe_request(self, method: str, endpoint: str, status: int, seconds: float) -> None:
        self.requests.labels(method, endpoint, str(status)).inc()
        self.latency.labels(method, endpoint).observe(seconds)

    async def refresh(self) -> None:
        """Probe what cannot be read synchronously (Redis) before a scrape."""
        if self.redis is None or self.redis_up is None:
            return
        try:
            await self.redis.ping()
            self.redis_up.set(1)
        except Exception:
            self.redis_up.set(0)

    async def render(self) -> bytes:
        await self.refresh()
        return generate_latest(self.registry)

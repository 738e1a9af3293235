"""Liveness and readiness of one instance, for load balancers and orchestrators.

*Alive* means the process serves HTTP.  *Ready* means it can do useful work:
the database answers, the schema has every migration this code needs (newer
ones from a rolling upgrade are fine: they are additive), Redis (when
configured) answers, and the instance is not shutting down; a load balancer
sends requests only to ready instances.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from homeserver.notifier import Notifier
from homeserver.storage.health import HealthRepository

logger = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 3.0


class HealthService:
    def __init__(self, repo: HealthRepository, notifier: Notifier, redis: Any, instance: str) -> None:
        self.repo = repo
        self.notifier = notifier
        self.redis = redis
        self.instance = instance

    async def readiness(self) -> dict[str, bool]:
        checks = {
            "database": await self._check(self.repo.ping()),
            "migrations": await self._check(self._schema()),
            "accepting": not self.notifier.stopping,
        }
        if self.redis is not None:
            checks["redis"] = await self._check(self.redis.ping())
        return checks

    async def _schema(self) -> None:
        if not await self.repo.schema_is_complete():
            raise RuntimeError("the database schema lacks migrations this instance needs")

    async def _check(self, probe: Any) -> bool:
        try:
            await asyncio.wait_for(probe, CHECK_TIMEOUT_S)
        except Exception as exc:
            logger.warning("readiness check failed: %s", exc)
            return False
        return True

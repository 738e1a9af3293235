"""Probes of the database for readiness checks."""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.migrate import applied_versions, known_migrations


class HealthRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ping(self) -> None:
        await self.db.fetch_one("SELECT 1 AS ok")

    async def schema_is_complete(self) -> bool:
        """True when every migration this code knows is applied.

        Newer ones (a newer release migrating during a rolling upgrade) are
        fine: migrations are additive, so this instance keeps serving.
        """
        return {m.version for m in known_migrations()} <= await applied_versions(self.db)

"""Probes of the database for readiness checks."""

from __future__ import annotations

from homeserver.storage.database import Database
from homeserver.storage.migrate import applied_versions, known_migrations


class HealthRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def ping(self) -> None:
        await self.db.fetch_one("SELECT 1 AS ok")

    async def schema_is_current(self) -> bool:
        """True when exactly the migrations this code knows are applied."""
        return await applied_versions(self.db) == {m.version for m in known_migrations()}

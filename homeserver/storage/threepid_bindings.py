"""Which third-party identifiers this homeserver bound to which identity server."""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.storage.database import Database


@dataclass(frozen=True)
class Binding:
    medium: str
    address: str
    id_server: str


class ThreepidBindingRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def add(self, user_id: str, binding: Binding, now_ms: int) -> None:
        await self.db.execute(
            self.db.upsert_sql(
                "threepid_bindings", ["user_id", "medium", "address", "id_server"],
                ["user_id", "medium", "address", "id_server", "created_ts"],
            ),
            (user_id, binding.medium, binding.address, binding.id_server, now_ms),
        )

    async def for_user(self, user_id: str) -> list[Binding]:
        rows = await self.db.fetch(
            "SELECT medium, address, id_server FROM threepid_bindings WHERE user_id = ? "
            "ORDER BY created_ts, medium, address, id_server",
            (user_id,),
        )
        return [Binding(str(r["medium"]), str(r["address"]), str(r["id_server"])) for r in rows]

    async def for_address(self, user_id: str, medium: str, address: str) -> list[Binding]:
        return [b for b in await self.for_user(user_id) if b.medium == medium and b.address == address]

    async def delete(self, user_id: str, binding: Binding) -> None:
        await self.db.execute(
            "DELETE FROM threepid_bindings WHERE user_id = ? AND medium = ? AND address = ? AND id_server = ?",
            (user_id, binding.medium, binding.address, binding.id_server),
        )

"""Profile fields (display name, avatar, Parley's extra fields) with visibility."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from homeserver.storage.database import Database


@dataclass(frozen=True)
class FieldRow:
    value: str | None
    visibility: str


def _in(values: Sequence[str]) -> str:
    return ", ".join("?" for _ in values)


class ProfileRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def fields(self, user_id: str) -> dict[str, FieldRow]:
        rows = await self.db.fetch(
            "SELECT field_name, value, visibility FROM profile_fields WHERE user_id = ?", [user_id]
        )
        return {str(r["field_name"]): FieldRow(r["value"], str(r["visibility"])) for r in rows}

    def _upsert_sql(self, keep_column: str) -> str:
        """One statement that inserts a field or updates it, leaving ``keep_column`` as it was.

        One statement, not INSERT IGNORE then UPDATE in a transaction: two of
        those at once on MariaDB each held the row's shared lock from the
        INSERT and waited for the other's to UPDATE (deadlock 1213).
        """
        columns = ["user_id", "field_name", "value", "visibility", "updated_ts"]
        changed = [c for c in ("value", "visibility") if c != keep_column] + ["updated_ts"]
        placeholders = ", ".join("?" for _ in columns)
        insert = f"INSERT INTO profile_fields ({', '.join(columns)}) VALUES ({placeholders})"
        if self.db.dialect == "mysql":
            return insert + " ON DUPLICATE KEY UPDATE " + ", ".join(f"{c} = VALUES({c})" for c in changed)
        return insert + " ON CONFLICT (user_id, field_name) DO UPDATE SET " + ", ".join(
            f"{c} = excluded.{c}" for c in changed)

    async def set_value(
        self, user_id: str, field_name: str, value: str | None, default_visibility: str, now_ms: int
    ) -> None:
        """Set a field's value, keeping its visibility (or ``default_visibility`` if new)."""
        await self.db.execute(
            self._upsert_sql(keep_column="visibility"),
            [user_id, field_name, value, default_visibility, now_ms],
        )

    async def set_visibility(self, user_id: str, field_name: str, visibility: str, now_ms: int) -> None:
        await self.db.execute(
            self._upsert_sql(keep_column="value"), [user_id, field_name, None, visibility, now_ms]
        )

    async def values_for(self, user_ids: Sequence[str], field_names: Sequence[str]) -> dict[str, dict[str, str]]:
        """``{user_id: {field: value}}`` for the given users and fields (non-null values)."""
        rows = await self.rows_for(user_ids, field_names, with_unset=False)
        return {u: {f: v for f, v in fields.items() if v is not None} for u, fields in rows.items()}

    async def rows_for(
        self, user_ids: Sequence[str], field_names: Sequence[str], with_unset: bool = True
    ) -> dict[str, dict[str, str | None]]:
        """Like :meth:`values_for`, also listing fields explicitly set to nothing (None)."""
        if not user_ids or not field_names:
            return {}
        out: dict[str, dict[str, str | None]] = {}
        not_null = "" if with_unset else " AND value IS NOT NULL"
        ids = list(user_ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            rows = await self.db.fetch(
                f"SELECT user_id, field_name, value FROM profile_fields WHERE user_id IN ({_in(chunk)}) "
                f"AND field_name IN ({_in(field_names)}){not_null}",
                [*chunk, *field_names],
            )
            for r in rows:
                value = None if r["value"] is None else str(r["value"])
                out.setdefault(str(r["user_id"]), {})[str(r["field_name"])] = value
        return out

    async def values_in_use(self, field_name: str, values: Sequence[str]) -> set[str]:
        if not values:
            return set()
        rows = await self.db.fetch(
            f"SELECT DISTINCT value FROM profile_fields WHERE field_name = ? AND value IN ({_in(values)})",
            [field_name, *values],
        )
        return {str(r["value"]) for r in rows}

    async def delete_user(self, user_id: str) -> None:
        await self.db.execute("DELETE FROM profile_fields WHERE user_id = ?", [user_id])

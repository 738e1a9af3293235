"""Rows of ``idempotent_requests``: one per (scope, Idempotency-Key), shared by every instance.

A row is *in flight* while ``answer`` is NULL: the attempt named in
``attempt`` holds it until ``expires_ts`` (its lease).  It is *answered*
once ``answer`` is set, and kept until ``expires_ts`` again.  An expired
row counts as absent: it is deleted and claimed afresh.  Every write names
the attempt, so an attempt whose lease ran out can neither complete nor
release the row a later attempt claimed.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from homeserver.storage.database import Database

_COLUMNS = ("lookup", "attempt", "created_ts", "expires_ts")


@dataclass(frozen=True)
class IdempotencyRow:
    attempt: str
    fingerprint: str | None
    status: int | None
    answer: bytes | None
    expires_ts: int

    @property
    def answered(self) -> bool:
        return self.answer is not None


class IdempotencyRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def claim(self, lookup: str, attempt: str, now: int, lease_until: int) -> bool:
        """Insert an in-flight row; False when a row for ``lookup`` exists already."""
        # A plain INSERT: MariaDB's INSERT IGNORE would warn (a Python warning) on every repeat.
        try:
            await self.db.execute(
                f"INSERT INTO idempotent_requests ({', '.join(_COLUMNS)}) VALUES (?, ?, ?, ?)",
                (lookup, attempt, now, lease_until))
        except IntegrityError:
            return False
        return True

    async def get(self, lookup: str) -> IdempotencyRow | None:
        row = await self.db.fetch_one(
            "SELECT attempt, fingerprint, status, answer, expires_ts "
            "FROM idempotent_requests WHERE lookup = ?", (lookup,))
        if row is None:
            return None
        answer = row["answer"]
        return IdempotencyRow(
            str(row["attempt"]),
            None if row["fingerprint"] is None else str(row["fingerprint"]),
            None if row["status"] is None else int(row["status"]),
            None if answer is None else bytes(answer),
            int(row["expires_ts"]),
        )

    async def complete(self, lookup: str, attempt: str, fingerprint: str | None, status: int,
                       answer: bytes, expires_ts: int) -> bool:
        changed = await self.db.execute(
            "UPDATE idempotent_requests SET fingerprint = ?, status = ?, answer = ?, expires_ts = ? "
            "WHERE lookup = ? AND attempt = ? AND answer IS NULL",
            (fingerprint, status, answer, expires_ts, lookup, attempt))
        return changed == 1

    async def release(self, lookup: str, attempt: str) -> None:
        """Forget an attempt that produced no answer worth keeping (a retry runs it afresh)."""
        await self.db.execute(
            "DELETE FROM idempotent_requests WHERE lookup = ? AND attempt = ? AND answer IS NULL",
            (lookup, attempt))

    async def delete_expired(self, lookup: str, now: int) -> None:
        await self.db.execute(
            "DELETE FROM idempotent_requests WHERE lookup = ? AND expires_ts <= ?", (lookup, now))

    async def delete_all_expired(self, now: int) -> int:
        return await self.db.execute("DELETE FROM idempotent_requests WHERE expires_ts <= ?", (now,))

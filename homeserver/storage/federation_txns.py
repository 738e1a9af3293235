"""Received ``/send/{txnId}`` transactions: one answer per (destination, origin, txn id)."""

from __future__ import annotations

from homeserver.storage.database import Database


class ReceivedTransactions:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def begin(self, destination: str, origin: str, txn_id: str, now_ms: int, stale_before_ms: int
                    ) -> tuple[bool, str | None]:
        """Claim the transaction: ``(True, None)`` for the first attempt.

        ``(False, answer)`` when it was answered before; ``(False, None)`` while
        another attempt is still running.  An attempt that started before
        ``stale_before_ms`` and never answered (its instance died) is taken over.
        """
        inserted = await self.db.execute(
            self.db.insert_ignore_sql("federation_received_txns", ["destination", "origin", "txn_id", "started_ts"]),
            (destination, origin, txn_id, now_ms),
        )
        if inserted:
            return True, None
        row = await self.db.fetch_one(
            "SELECT answer, started_ts FROM federation_received_txns WHERE destination = ? AND origin = ? "
            "AND txn_id = ?", (destination, origin, txn_id),
        )
        if row is None:  # expired between the two statements
            return await self.begin(destination, origin, txn_id, now_ms, stale_before_ms)
        if row["answer"] is not None:
            return False, str(row["answer"])
        taken = await self.db.execute(
            "UPDATE federation_received_txns SET started_ts = ? WHERE destination = ? AND origin = ? "
            "AND txn_id = ? AND answer IS NULL AND started_ts = ? AND started_ts < ?",
            (now_ms, destination, origin, txn_id, row["started_ts"], stale_before_ms),
        )
        return bool(taken), None

    async def finish(self, destination: str, origin: str, txn_id: str, answer: str) -> None:
        await self.db.execute(
            "UPDATE federation_received_txns SET answer = ? WHERE destination = ? AND origin = ? AND txn_id = ?",
            (answer, destination, origin, txn_id),
        )

    async def abandon(self, destination: str, origin: str, txn_id: str) -> None:
        """The attempt failed as a whole: the origin's retry runs it again."""
        await self.db.execute(
            "DELETE FROM federation_received_txns WHERE destination = ? AND origin = ? AND txn_id = ? "
            "AND answer IS NULL", (destination, origin, txn_id),
        )

    async def expire(self, older_than_ms: int) -> int:
        return await self.db.execute(
            "DELETE FROM federation_received_txns WHERE started_ts < ?", (older_than_ms,)
        )

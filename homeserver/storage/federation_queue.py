"""The outgoing federation queue: PDUs and EDUs per (origin, destination), retry state, sender leases.

Rows stay in ``federation_outbox`` until the destination accepted the
transaction that carried them, so a restart loses nothing.  One instance at
a time sends to a destination: it holds ``federation_destinations.lease_owner``
until ``lease_until_ts`` (renewed while it sends; another instance takes over
after it expires).
"""

from __future__ import annotations

from dataclasses import dataclass

from homeserver.storage.database import Database

PDU, EDU = "pdu", "edu"


@dataclass(frozen=True)
class QueuedItem:
    id: int
    kind: str
    payload: str  # canonical JSON: the PDU, or {"edu_type", "content"}


@dataclass(frozen=True)
class DestinationState:
    failures: int
    retry_at_ts: int
    last_success_ts: int | None


class OutboxRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def enqueue(self, origin: str, destinations: list[str], kind: str, payload: str, now_ms: int) -> None:
        async with self.db.transaction() as conn:
            for destination in destinations:
                await self.db.execute(
                    self.db.insert_ignore_sql("federation_destinations", ["origin", "destination"]),
                    (origin, destination), conn,
                )
                await self.db.execute(
                    "INSERT INTO federation_outbox (origin, destination, kind, payload, created_ts) "
                    "VALUES (?, ?, ?, ?, ?)", (origin, destination, kind, payload, now_ms), conn,
                )

    async def batch(self, origin: str, destination: str, max_pdus: int, max_edus: int) -> list[QueuedItem]:
        """The oldest queued items, at most ``max_pdus`` PDUs and ``max_edus`` EDUs, in order."""
        rows = await self.db.fetch(
            "SELECT id, kind, payload FROM federation_outbox WHERE origin = ? AND destination = ? "
            "ORDER BY id LIMIT ?", (origin, destination, max_pdus + max_edus),
        )
        out: list[QueuedItem] = []
        counts = {PDU: 0, EDU: 0}
        limits = {PDU: max_pdus, EDU: max_edus}
        for row in rows:
            kind = str(row["kind"])
            if counts.get(kind, 0) >= limits.get(kind, 0):
                break  # keep the order: what follows waits for the next transaction
            counts[kind] += 1
            out.append(QueuedItem(int(row["id"]), kind, str(row["payload"])))
        return out

    async def delete(self, ids: list[int]) -> None:
        for start in range(0, len(ids), 200):
            chunk = ids[start:start + 200]
            await self.db.execute(
                f"DELETE FROM federation_outbox WHERE id IN ({', '.join('?' for _ in chunk)})", chunk
            )

    async def pending_destinations(self, origin: str, now_ms: int) -> list[str]:
        """Destinations with queued items whose retry time has come and whose lease is free."""
        rows = await self.db.fetch(
            "SELECT d.destination FROM federation_destinations d WHERE d.origin = ? AND d.retry_at_ts <= ? "
            "AND d.lease_until_ts < ? AND EXISTS (SELECT 1 FROM federation_outbox o "
            "WHERE o.origin = d.origin AND o.destination = d.destination)", (origin, now_ms, now_ms),
        )
        return [str(row["destination"]) for row in rows]

    async def claim(self, origin: str, destination: str, owner: str, now_ms: int, lease_ms: int) -> bool:
        """Take (or renew) the sender lease of ``destination``; False if another instance holds it."""
        taken = await self.db.execute(
            "UPDATE federation_destinations SET lease_owner = ?, lease_until_ts = ? WHERE origin = ? "
            "AND destination = ? AND (lease_owner IS NULL OR lease_owner = ? OR lease_until_ts < ?)",
            (owner, now_ms + lease_ms, origin, destination, owner, now_ms),
        )
        return taken > 0

    async def release(self, origin: str, destination: str, owner: str) -> None:
        await self.db.execute(
            "UPDATE federation_destinations SET lease_owner = NULL, lease_until_ts = 0 WHERE origin = ? "
            "AND destination = ? AND lease_owner = ?", (origin, destination, owner),
        )

    async def state(self, origin: str, destination: str) -> DestinationState | None:
        row = await self.db.fetch_one(
            "SELECT failures, retry_at_ts, last_success_ts FROM federation_destinations WHERE origin = ? "
            "AND destination = ?", (origin, destination),
        )
        if row is None:
            return None
        last = row["last_success_ts"]
        return DestinationState(int(row["failures"]), int(row["retry_at_ts"]),
                                None if last is None else int(last))

    async def failed(self, origin: str, destination: str, retry_at_ms: int) -> None:
        await self.db.execute(
            "UPDATE federation_destinations SET failures = failures + 1, retry_at_ts = ? WHERE origin = ? "
            "AND destination = ?", (retry_at_ms, origin, destination),
        )

    async def succeeded(self, origin: str, destination: str, now_ms: int) -> None:
        await self.db.execute(
            "UPDATE federation_destinations SET failures = 0, retry_at_ts = 0, last_success_ts = ? "
            "WHERE origin = ? AND destination = ?", (now_ms, origin, destination),
        )

    async def reachable_again(self, origin: str, destination: str) -> bool:
        """The destination contacted us: retry it now (catch-up); True if it was backing off."""
        return await self.db.execute(
            "UPDATE federation_destinations SET retry_at_ts = 0 WHERE origin = ? AND destination = ? "
            "AND retry_at_ts > 0", (origin, destination),
        ) > 0

"""Device pairing sessions and failed-claim counters, all in the database.

Every state change is one conditional statement (``UPDATE ... WHERE`` the
expected state, ``DELETE ... WHERE`` the payload is present) whose affected
row count says whether this caller won, so several instances can serve
the two devices of one pairing.
"""

from __future__ import annotations

from dataclasses import dataclass

from tortoise.exceptions import IntegrityError

from homeserver.storage.database import Database


class CodeInUse(Exception):
    """Another live pairing session holds the same code."""


@dataclass(frozen=True)
class PairingRow:
    session_id: str
    poll_token_hash: str
    expected_user_id: str | None
    ephemeral_key: str | None
    device_display_name: str | None
    pairing_id: str | None
    claimed_user_id: str | None
    claimed_device_id: str | None
    payload: str | None
    polls: int
    expires_ts: int
    approving_key: str | None = None


_COLUMNS = (
    "session_id, poll_token_hash, expected_user_id, ephemeral_key, device_display_name, pairing_id, "
    "claimed_user_id, claimed_device_id, payload, polls, expires_ts, approving_key"
)


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def _row(r: dict[str, object]) -> PairingRow:
    return PairingRow(
        session_id=str(r["session_id"]),
        poll_token_hash=str(r["poll_token_hash"]),
        expected_user_id=_opt(r["expected_user_id"]),
        ephemeral_key=_opt(r["ephemeral_key"]),
        device_display_name=_opt(r["device_display_name"]),
        pairing_id=_opt(r["pairing_id"]),
        claimed_user_id=_opt(r["claimed_user_id"]),
        claimed_device_id=_opt(r["claimed_device_id"]),
        payload=_opt(r["payload"]),
        polls=int(r["polls"]),  # type: ignore[call-overload]
        expires_ts=int(r["expires_ts"]),  # type: ignore[call-overload]
        approving_key=_opt(r["approving_key"]),
    )


class PairingRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    async def create(
        self, session_id: str, code_hash: str, poll_token_hash: str, expected_user_id: str | None,
        ephemeral_key: str | None, device_display_name: str | None, now_ms: int, expires_ts: int,
    ) -> None:
        # An expired session may still hold the code until housekeeping runs.
        await self.db.execute(
            "DELETE FROM pairing_sessions WHERE code_hash = ? AND expires_ts <= ?", (code_hash, now_ms)
        )
        try:
            await self.db.execute(
                "INSERT INTO pairing_sessions (session_id, code_hash, poll_token_hash, expected_user_id, "
                "ephemeral_key, device_display_name, polls, created_ts, expires_ts) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (session_id, code_hash, poll_token_hash, expected_user_id, ephemeral_key,
                 device_display_name, 0, now_ms, expires_ts),
            )
        except IntegrityError as exc:
            raise CodeInUse from exc

    async def get(self, session_id: str) -> PairingRow | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM pairing_sessions WHERE session_id = ?", (session_id,)
        )
        return _row(row) if row else None

    async def find_unclaimed(self, code_hash: str, now_ms: int) -> PairingRow | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM pairing_sessions "
            "WHERE code_hash = ? AND expires_ts > ? AND claimed_user_id IS NULL",
            (code_hash, now_ms),
        )
        return _row(row) if row else None

    async def by_pairing_id(self, pairing_id: str) -> PairingRow | None:
        row = await self.db.fetch_one(
            f"SELECT {_COLUMNS} FROM pairing_sessions WHERE pairing_id = ?", (pairing_id,)
        )
        return _row(row) if row else None

    async def claim(
        self, session_id: str, pairing_id: str, user_id: str, device_id: str, now_ms: int,
        approving_key: str | None = None,
    ) -> bool:
        updated = await self.db.execute(
            "UPDATE pairing_sessions SET pairing_id = ?, claimed_user_id = ?, claimed_device_id = ?, "
            "approving_key = ? WHERE session_id = ? AND claimed_user_id IS NULL AND expires_ts > ?",
            (pairing_id, user_id, device_id, approving_key, session_id, now_ms),
        )
        return updated == 1

    async def set_payload(
        self, pairing_id: str, user_id: str, device_id: str, payload: str, now_ms: int
    ) -> bool:
        updated = await self.db.execute(
            "UPDATE pairing_sessions SET payload = ? WHERE pairing_id = ? AND claimed_user_id = ? "
            "AND claimed_device_id = ? AND payload IS NULL AND expires_ts > ?",
            (payload, pairing_id, user_id, device_id, now_ms),
        )
        return updated == 1

    async def count_poll(self, session_id: str) -> None:
        await self.db.execute(
            "UPDATE pairing_sessions SET polls = polls + 1 WHERE session_id = ?", (session_id,)
        )

    async def take(self, session_id: str) -> bool:
        """Delete a session whose payload is ready; True for the one caller that did."""
        deleted = await self.db.execute(
            "DELETE FROM pairing_sessions WHERE session_id = ? AND payload IS NOT NULL", (session_id,)
        )
        return deleted == 1

    async def delete(self, session_id: str) -> None:
        await self.db.execute("DELETE FROM pairing_sessions WHERE session_id = ?", (session_id,))

    async def delete_expired(self, now_ms: int) -> int:
        return await self.db.execute("DELETE FROM pairing_sessions WHERE expires_ts <= ?", (now_ms,))

    # ------------------------------------------------------ failed claims
    async def reserve_attempt(self, user_id: str, window_start: int) -> int:
        """Count one claim attempt in this window, atomically; return the count including it.

        One upsert and a read in one transaction (the upsert holds the row's
        lock), so concurrent claims each get their own number: the cap
        cannot be raced past by sending many guesses at once.
        """
        if self.db.dialect == "mysql":
            upsert = (
                "INSERT INTO pairing_claim_failures (user_id, window_start, failures) VALUES (?, ?, 1) "
                "ON DUPLICATE KEY UPDATE failures = IF(window_start = VALUES(window_start), failures + 1, 1), "
                "window_start = VALUES(window_start)"
            )
        else:
            upsert = (
                "INSERT INTO pairing_claim_failures (user_id, window_start, failures) VALUES (?, ?, 1) "
                "ON CONFLICT (user_id) DO UPDATE SET failures = CASE "
                "WHEN pairing_claim_failures.window_start = excluded.window_start "
                "THEN pairing_claim_failures.failures + 1 ELSE 1 END, window_start = excluded.window_start"
            )
        async with self.db.transaction() as conn:
            await self.db.execute(upsert, (user_id, window_start), conn=conn)
            row = await self.db.fetch_one(
                "SELECT failures FROM pairing_claim_failures WHERE user_id = ?", (user_id,), conn=conn
            )
        return int(row["failures"]) if row else 1

    async def release_attempt(self, user_id: str, window_start: int) -> None:
        """A reserved attempt succeeded: it does not count as a failure."""
        await self.db.execute(
            "UPDATE pairing_claim_failures SET failures = failures - 1 "
            "WHERE user_id = ? AND window_start = ? AND failures > 0",
            (user_id, window_start),
        )

    async def delete_failures_before(self, window_start: int) -> int:
        return await self.db.execute(
            "DELETE FROM pairing_claim_failures WHERE window_start < ?", (window_start,)
        )

"""Short-lived authentication state: interactive-auth sessions, e-mail codes,
login challenges.  All of it lives in the database so that any instance can
continue a flow another instance started."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from homeserver.storage.database import Database


@dataclass
class UiaSessionRow:
    session_id: str
    purpose: str
    user_id: str | None
    completed: list[str]
    params: dict[str, Any]
    expires_ts: int


@dataclass
class EmailValidationRow:
    sid: str
    client_secret: str
    email: str
    code_hash: str | None
    attempts: int
    validated_ts: int | None
    expires_ts: int


class AuthStateRepository:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -------------------------------------------------------------- UIA sessions
    async def create_uia(
        self, session_id: str, purpose: str, user_id: str | None, params: dict[str, Any],
        now_ms: int, expires_ts: int,
    ) -> None:
        await self.db.execute(
            "INSERT INTO uia_sessions (session_id, purpose, user_id, completed, params, created_ts, expires_ts)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (session_id, purpose, user_id, "[]", json.dumps(params), now_ms, expires_ts),
        )

    async def get_uia(self, session_id: str, now_ms: int) -> UiaSessionRow | None:
        row = await self.db.fetch_one(
            "SELECT * FROM uia_sessions WHERE session_id = ? AND expires_ts > ?",
            (session_id, now_ms),
        )
        if row is None:
            return None
        return UiaSessionRow(
            session_id=row["session_id"],
            purpose=row["purpose"],
            user_id=row["user_id"],
            completed=list(json.loads(row["completed"])),
            params=dict(json.loads(row["params"])),
            expires_ts=int(row["expires_ts"]),
        )

    async def mark_stage_done(self, session_id: str, completed: list[str]) -> None:
        await self.db.execute(
            "UPDATE uia_sessions SET completed = ? WHERE session_id = ?",
            (json.dumps(completed), session_id),
        )

    async def set_uia_params(self, session_id: str, params: dict[str, Any]) -> None:
        await self.db.execute(
            "UPDATE uia_sessions SET params = ? WHERE session_id = ?",
            (json.dumps(params), session_id),
        )

    async def delete_uia(self, session_id: str) -> bool:
        """Delete; True only for the caller that actually removed it (single use)."""
        return await self.db.execute(
            "DELETE FROM uia_sessions WHERE session_id = ?", (session_id,)
        ) > 0

    # ------------------------------------------------------------- e-mail codes
    async def create_email_validation(
        self, sid: str, client_secret: str, email: str, code_hash: str | None,
        now_ms: int, expires_ts: int,
    ) -> None:
        await self.db.execute(
            "INSERT INTO email_validations (sid, client_secret, email, code_hash, attempts,"
            " validated_ts, created_ts, expires_ts) VALUES (?, ?, ?, ?, 0, NULL, ?, ?)",
            (sid, client_secret, email, code_hash, now_ms, expires_ts),
        )

    async def find_email_validation(
        self, client_secret: str, email: str, now_ms: int
    ) -> EmailValidationRow | None:
        row = await self.db.fetch_one(
            "SELECT * FROM email_validations WHERE client_secret = ? AND email = ? AND expires_ts > ?"
            " ORDER BY created_ts DESC LIMIT 1",
            (client_secret, email, now_ms),
        )
        return _email_row(row) if row else None

    async def get_email_validation(self, sid: str, now_ms: int) -> EmailValidationRow | None:
        row = await self.db.fetch_one(
            "SELECT * FROM email_validations WHERE sid = ? AND expires_ts > ?", (sid, now_ms)
        )
        return _email_row(row) if row else None

    async def count_email_attempt(self, sid: str, max_attempts: int) -> bool:
        """Consume one attempt atomically; False when none are left."""
        return await self.db.execute(
            "UPDATE email_validations SET attempts = attempts + 1 WHERE sid = ? AND attempts < ?",
            (sid, max_attempts),
        ) > 0

    async def mark_email_validated(self, sid: str, now_ms: int) -> None:
        await self.db.execute(
            "UPDATE email_validations SET validated_ts = ? WHERE sid = ?", (now_ms, sid)
        )

    async def delete_email_validation(self, sid: str) -> None:
        await self.db.execute("DELETE FROM email_validations WHERE sid = ?", (sid,))

    # --------------------------------------------------------- login challenges
    async def create_challenge(
        self, challenge_id: str, user_id: str, nonce: str, expires_ts: int
    ) -> None:
        await self.db.execute(
            "INSERT INTO login_challenges (challenge_id, user_id, nonce, expires_ts) VALUES (?, ?, ?, ?)",
            (challenge_id, user_id, nonce, expires_ts),
        )

    async def take_challenge(self, challenge_id: str, now_ms: int) -> tuple[str, str] | None:
        """Return (user_id, nonce) and delete the challenge: it is single use."""
        row = await self.db.fetch_one(
            "SELECT user_id, nonce, expires_ts FROM login_challenges WHERE challenge_id = ?",
            (challenge_id,),
        )
        if row is None:
            return None
        removed = await self.db.execute(
            "DELETE FROM login_challenges WHERE challenge_id = ?", (challenge_id,)
        )
        if not removed or int(row["expires_ts"]) <= now_ms:
            return None
        return str(row["user_id"]), str(row["nonce"])

    # ---------------------------------------------------------------- cleanup
    async def delete_expired(self, now_ms: int) -> int:
        total = 0
        for table in ("uia_sessions", "email_validations", "login_challenges"):
            total += await self.db.execute(f"DELETE FROM {table} WHERE expires_ts <= ?", (now_ms,))
        return total


def _email_row(row: dict[str, Any]) -> EmailValidationRow:
    return EmailValidationRow(
        sid=row["sid"],
        client_secret=row["client_secret"],
        email=row["email"],
        code_hash=row["code_hash"],
        attempts=int(row["attempts"]),
        validated_ts=int(row["validated_ts"]) if row["validated_ts"] is not None else None,
        expires_ts=int(row["expires_ts"]),
    )

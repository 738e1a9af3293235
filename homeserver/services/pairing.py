"""Device pairing: a new device receives the user's keys from a logged-in one.

Unstable endpoints under ``/_matrix/client/unstable/im.parley/pairing/``:

1. ``start`` (no login): the new device sends ``{ephemeral_key?, user_id?,
   device_display_name?}`` and gets ``{code: 8 digits, poll_token,
   expires_in_ms: 120000}``.  ``ephemeral_key`` is an opaque public key the
   claiming device encrypts the payload to; ``user_id`` restricts who may claim.
2. ``claim`` (logged in): ``{code, ephemeral_key?}`` → ``{pairing_id,
   ephemeral_key, device_display_name, expires_in_ms}``; binds the session to
   the claiming user and device.  The optional ``ephemeral_key`` is the
   claiming device's, handed to the new device by ``poll`` so that both
   devices can show the SAS of the pairing transcript (:mod:`common.crypto.sas`)
   before the payload is sent.  Unknown, expired, already claimed and other-user codes
   all answer the same 404.  Five wrong codes per user per 10 minutes lock
   claiming for the rest of the window, on top of the per-IP and per-user
   rate limit ``rate_limits.pairing_per_minute``.
3. ``send`` (the claiming device): ``{pairing_id, payload}`` with an opaque
   payload (string or object, at most 64 KiB), accepted once.
4. ``poll`` (no login): ``{poll_token}`` → ``{status: "waiting", claimed}``
   (once claimed with a key, also ``approving_key``, ``approving_user_id``,
   ``approving_device_id``) or, once, ``{status: "ready", payload, user_id, device_id}``; the session
   is deleted on delivery.  The poll token is ``<session id>.<secret>``; only
   a SHA-256 of the secret is stored and it is compared in constant time.

Sessions expire 120 s after ``start``; everything lives in the database, so
the two devices may talk to different instances.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from typing import Any

from common.canonical_json import CanonicalJsonError, encode_canonical_json
from common.errors import Codes, MatrixError, bad_json, bad_param, limit_exceeded
from common.identifiers import parse_user_id
from homeserver.services.clock import Clock
from homeserver.services.ratelimit import Limit, RateLimiter
from homeserver.storage.pairing import CodeInUse, PairingRepository

PAIRING_TTL_MS = 120_000
CODE_DIGITS = 8
MAX_PAYLOAD_BYTES = 65_536
MAX_EPHEMERAL_KEY = 1024
MAX_POLLS = 90
MAX_FAILED_CLAIMS = 5
FAILED_CLAIM_WINDOW_MS = 600_000
POLLS_PER_MINUTE = 120


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _unknown_code() -> MatrixError:
    return MatrixError(404, Codes.NOT_FOUND, "Unknown, expired or already used pairing code")


def _unknown_session() -> MatrixError:
    return MatrixError(404, Codes.NOT_FOUND, "Unknown or expired pairing session")


def _opt_str(body: dict[str, Any], name: str, max_len: int) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= max_len:
        raise bad_param(f"{name} must be a string of at most {max_len} characters")
    return value


class PairingService:
    def __init__(
        self, repo: PairingRepository, limiter: RateLimiter, clock: Clock, server_name: str,
        per_minute: int,
    ) -> None:
        self.repo = repo
        self.limiter = limiter
        self.clock = clock
        self.server_name = server_name
        self.limit = Limit("pairing", per_minute)
        self.poll_limit = Limit("pairing_poll", max(POLLS_PER_MINUTE, per_minute))

    def _code_hash(self, code: str) -> str:
        # Deployments sharing one database keep their codes apart.
        return _sha256(f"{self.server_name}|{code}")

    async def start(self, ip: str | None, body: dict[str, Any]) -> dict[str, Any]:
        await self.limiter.check(self.limit, f"start-ip:{ip}")
        expected = body.get("user_id")
        if expected is not None:
            if not isinstance(expected, str):
                raise bad_param("user_id must be a string")
            if parse_user_id(expected)[1] != self.server_name:
                raise bad_param("user_id must be a user of this server")
        ephemeral_key = _opt_str(body, "ephemeral_key", MAX_EPHEMERAL_KEY)
        display_name = _opt_str(body, "device_display_name", 100)
        now = self.clock.now_ms()
        session_id = secrets.token_urlsafe(18)
        secret = secrets.token_urlsafe(32)
        for _ in range(10):
            code = f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"
            try:
                await self.repo.create(
                    session_id, self._code_hash(code), _sha256(secret), expected, ephemeral_key,
                    display_name, now, now + PAIRING_TTL_MS,
                )
                break
            except CodeInUse:
                continue
        else:
            raise MatrixError(503, Codes.UNKNOWN, "No pairing code available, try again")
        return {"code": code, "poll_token": f"{session_id}.{secret}", "expires_in_ms": PAIRING_TTL_MS}

    async def claim(self, user_id: str, device_id: str, ip: str | None, body: dict[str, Any]) -> dict[str, Any]:
        await self.limiter.check(self.limit, f"claim-ip:{ip}")
        await self.limiter.check(self.limit, f"claim-user:{user_id}")
        approving_key = _opt_str(body, "ephemeral_key", MAX_EPHEMERAL_KEY)  # before an attempt is taken
        now = self.clock.now_ms()
        window = now - now % FAILED_CLAIM_WINDOW_MS
        # Every attempt takes a slot first (atomically) and gives it back if it
        # succeeds, so at most MAX_FAILED_CLAIMS guesses fail per window even
        # when they all arrive at once.
        if await self.repo.reserve_attempt(user_id, window) > MAX_FAILED_CLAIMS:
            raise limit_exceeded(window + FAILED_CLAIM_WINDOW_MS - now)
        code = body.get("code")
        session = None
        if isinstance(code, str) and len(code) == CODE_DIGITS and code.isascii() and code.isdigit():
            session = await self.repo.find_unclaimed(self._code_hash(code), now)
        if session is not None and session.expected_user_id not in (None, user_id):
            session = None
        pairing_id = secrets.token_urlsafe(18)
        if session is None or not await self.repo.claim(session.session_id, pairing_id, user_id, device_id, now,
                                                        approving_key):
            raise _unknown_code()
        await self.repo.release_attempt(user_id, window)
        return {
            "pairing_id": pairing_id,
            "ephemeral_key": session.ephemeral_key,
            "device_display_name": session.device_display_name,
            "expires_in_ms": max(0, session.expires_ts - now),
        }

    async def send(self, user_id: str, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
        await self.limiter.check(self.limit, f"send-user:{user_id}")
        pairing_id = body.get("pairing_id")
        if not isinstance(pairing_id, str) or not 0 < len(pairing_id) <= 64:
            raise bad_param("pairing_id must be a string")
        payload = body.get("payload")
        if not isinstance(payload, (str, dict)) or not payload:
            raise bad_json("payload must be a non-empty string or object")
        try:
            text = encode_canonical_json(payload).decode("utf-8")
        except CanonicalJsonError as exc:
            raise bad_json(f"payload: {exc}") from None
        if len(text.encode("utf-8")) > MAX_PAYLOAD_BYTES + 2:
            raise MatrixError(413, Codes.TOO_LARGE, "The pairing payload is limited to 64 KiB")
        now = self.clock.now_ms()
        if await self.repo.set_payload(pairing_id, user_id, device_id, text, now):
            return {}
        session = await self.repo.by_pairing_id(pairing_id)
        if (session is None or session.expires_ts <= now or session.claimed_user_id != user_id
                or session.claimed_device_id != device_id):
            raise _unknown_session()
        raise bad_param("The payload of this pairing was already sent")

    async def poll(self, ip: str | None, body: dict[str, Any]) -> dict[str, Any]:
        await self.limiter.check(self.poll_limit, f"poll-ip:{ip}")
        token = body.get("poll_token")
        if not isinstance(token, str) or len(token) > 200:
            raise bad_param("poll_token must be a string")
        session_id, _, secret = token.partition(".")
        session = await self.repo.get(session_id) if session_id and secret else None
        now = self.clock.now_ms()
        if (session is None or session.expires_ts <= now
                or not hmac.compare_digest(_sha256(secret), session.poll_token_hash)):
            raise _unknown_session()
        if session.polls >= MAX_POLLS:
            await self.repo.delete(session.session_id)
            raise _unknown_session()
        await self.repo.count_poll(session.session_id)
        if session.payload is None:
            waiting: dict[str, Any] = {
                "status": "waiting",
                "claimed": session.claimed_user_id is not None,
                "expires_in_ms": session.expires_ts - now,
            }
            if session.claimed_user_id is not None and session.approving_key is not None:
                waiting.update(approving_key=session.approving_key,
                               approving_user_id=session.claimed_user_id,
                               approving_device_id=session.claimed_device_id)
            return waiting
        if not await self.repo.take(session.session_id):
            raise _unknown_session()  # a concurrent poll received it
        return {
            "status": "ready",
            "payload": json.loads(session.payload),
            "user_id": session.claimed_user_id,
            "device_id": session.claimed_device_id,
        }

    async def expire(self) -> None:
        """Housekeeping: forget expired sessions and old failure windows."""
        now = self.clock.now_ms()
        await self.repo.delete_expired(now)
        await self.repo.delete_failures_before(now - now % FAILED_CLAIM_WINDOW_MS)

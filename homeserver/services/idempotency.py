"""Idempotency keys: a POST repeated with the same ``Idempotency-Key`` is applied once.

Semantics follow draft-ietf-httpapi-idempotency-key-header:

* **Scope.**  With a valid access token the key belongs to that token's
  user and device; the stored answer is found by (scope, key) and the
  request's *fingerprint* (method, path and query, content type, body) is
  kept beside it, so the same key with a different request is refused
  (``422``).  Without a login the scope is the key *and* the route and the
  body (a SHA-256 over all of them): a stranger who learns a key cannot
  reach the answer, nor block a request with it, without sending the very
  same body (which, for ``/register`` and ``/login``, holds the password).
* **Answers** with a 2xx status are stored, and replayed to a repeat with
  ``Idempotent-Replayed: true``.  Any other answer (a UIA challenge, an
  error, a rate limit) is not stored: the repeat runs afresh and meets the
  same rules again.
* **In flight.**  A repeat that arrives while the first attempt still runs
  *waits* for it (up to ``limits.idempotency_wait_ms``, on any instance:
  the row is in the shared database) and then gets its answer.  Past the
  wait it gets ``409`` (``M_UNKNOWN``, ``retry_after_ms``, ``Retry-After``);
  a client may repeat the request with the same key.  A first attempt that
  dies (its instance crashed) holds the key for at most :data:`LEASE_MS`.
* **Lifetime.**  Answers are kept ``limits.idempotency_ttl_ms`` (24 h by
  default), answers holding an access or refresh token only
  :data:`CREDENTIAL_TTL_MS`; expired rows are invisible at once and
  deleted by housekeeping.
* **At rest** an answer is AES-256-GCM ciphertext under a key derived
  (HKDF-SHA256) from the raw Idempotency-Key and the request fingerprint.
  The database keeps only SHA-256 digests of those, so a copy of it (a
  backup, a read-only SQL injection) opens no stored answer, and the access
  tokens of stored ``/register`` and ``/login`` answers stay unreadable.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import random
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from common.crypto.primitives import aes_gcm_decrypt, aes_gcm_encrypt, hkdf_sha256, random_bytes
from common.errors import Codes, MatrixError
from homeserver.services.clock import Clock
from homeserver.storage.idempotency import IdempotencyRepository, IdempotencyRow

# A first attempt holds its key at most this long (then a repeat runs afresh).
LEASE_MS = 120_000
# Answers that carry an access or refresh token are kept this long only.
CREDENTIAL_TTL_MS = 10 * 60_000
MAX_KEY_LENGTH = 255
_NONCE = 12
_POLL_MS = (20, 250)  # first and largest pause between looks at an in-flight row


@dataclass(frozen=True)
class Claim:
    """This request runs first: it owns the key until it completes or releases it."""

    attempt: str


@dataclass(frozen=True)
class Answer:
    status: int
    headers: list[tuple[bytes, bytes]]
    body: bytes


def parse_key(raw: bytes) -> str:
    """The key of an ``Idempotency-Key`` header (a structured-field string, quotes optional)."""
    try:
        text = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise bad_key() from None
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = text[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not 0 < len(text) <= MAX_KEY_LENGTH or any(not 0x20 <= ord(c) < 0x7F for c in text):
        raise bad_key()
    return text


def bad_key() -> MatrixError:
    return MatrixError(400, Codes.INVALID_PARAM,
                       f"Idempotency-Key must be 1 to {MAX_KEY_LENGTH} printable ASCII characters")


def key_reused() -> MatrixError:
    return MatrixError(422, Codes.INVALID_PARAM,
                       "This Idempotency-Key was already used for a different request")


def still_in_flight(retry_after_ms: int) -> MatrixError:
    seconds = max(1, (retry_after_ms + 999) // 1000)
    return MatrixError(409, Codes.UNKNOWN,
                       "A request with this Idempotency-Key is still being processed; repeat it later",
                       extra={"retry_after_ms": retry_after_ms}, headers={"Retry-After": str(seconds)})


def digest(parts: Sequence[bytes]) -> str:
    """SHA-256 over length-prefixed parts (no two part lists share an encoding)."""
    h = hashlib.sha256()
    for part in parts:
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


class IdempotencyService:
    def __init__(self, repo: IdempotencyRepository, clock: Clock, server_name: str,
                 ttl_ms: int, wait_ms: int) -> None:
        self.repo = repo
        self.clock = clock
        self.server_name = server_name
        self.ttl_ms = ttl_ms
        self.wait_ms = wait_ms
        # Repeats now waiting for a first attempt (read by tests before they let it finish).
        self.waiting = 0

    # ------------------------------------------------------------ addressing
    def lookup(self, scope: str, key: str, fingerprint: str | None) -> str:
        """The row's id: the scope and key (and, without a login, the whole request)."""
        parts = [b"lookup", self.server_name.encode(), scope.encode(), key.encode()]
        return digest(parts + ([fingerprint.encode()] if fingerprint is not None else []))

    def _seal_key(self, scope: str, key: str, fingerprint: str) -> bytes:
        ikm = b"\0".join((self.server_name.encode(), scope.encode(), key.encode(), fingerprint.encode()))
        return hkdf_sha256(ikm, salt=None, info=b"parley idempotent answer v1", length=32)

    # ------------------------------------------------------------ lifecycle
    async def begin(self, lookup: str) -> Claim | IdempotencyRow:
        """Claim the key, or return its row (answered, or in flight under another attempt)."""
        while True:
            now = self.clock.now_ms()
            attempt = secrets.token_hex(16)
            if await self.repo.claim(lookup, attempt, now, now + LEASE_MS):
                return Claim(attempt)
            row = await self.repo.get(lookup)
            if row is None:
                continue  # released or expired in between: claim again
            if row.expires_ts <= now:
                await self.repo.delete_expired(lookup, now)
                continue
            return row

    async def wait(self, lookup: str) -> IdempotencyRow | None:
        """The row once answered, None once gone (the first attempt failed), or the row still in flight."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_ms / 1000
        pause = _POLL_MS[0] / 1000
        self.waiting += 1
        try:
            while True:
                row = await self.repo.get(lookup)
                if row is None or row.expires_ts <= self.clock.now_ms():
                    return None
                left = deadline - loop.time()
                if row.answered or left <= 0:
                    return row
                await asyncio.sleep(min(pause * random.uniform(0.8, 1.2), left))
                pause = min(pause * 2, _POLL_MS[1] / 1000)
        finally:
            self.waiting -= 1

    async def complete(self, lookup: str, claim: Claim, scope: str, key: str, fingerprint: str,
                       answer: Answer) -> None:
        headers = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in answer.headers]
        head = json.dumps(headers).encode()
        plaintext = len(head).to_bytes(4, "big") + head + answer.body
        nonce = random_bytes(_NONCE)
        sealed = nonce + aes_gcm_encrypt(self._seal_key(scope, key, fingerprint), nonce, plaintext,
                                         lookup.encode())
        ttl = CREDENTIAL_TTL_MS if _holds_credentials(answer.body) else self.ttl_ms
        await self.repo.complete(lookup, claim.attempt, fingerprint, answer.status, sealed,
                                 self.clock.now_ms() + min(ttl, self.ttl_ms))

    async def release(self, lookup: str, claim: Claim) -> None:
        await self.repo.release(lookup, claim.attempt)

    def open(self, row: IdempotencyRow, lookup: str, scope: str, key: str, fingerprint: str) -> Answer:
        """The stored answer of ``row`` (its fingerprint must be ``fingerprint``)."""
        assert row.answer is not None and row.status is not None
        sealed = row.answer
        plaintext = aes_gcm_decrypt(self._seal_key(scope, key, fingerprint), sealed[:_NONCE],
                                    sealed[_NONCE:], lookup.encode())
        size = int.from_bytes(plaintext[:4], "big")
        headers = [(str(n).encode("latin-1"), str(v).encode("latin-1"))
                   for n, v in json.loads(plaintext[4:4 + size])]
        return Answer(row.status, headers, plaintext[4 + size:])

    async def expire(self) -> None:
        """Housekeeping: delete answers and leases past their time."""
        await self.repo.delete_all_expired(self.clock.now_ms())


def _holds_credentials(body: bytes) -> bool:
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return False
    return isinstance(value, dict) and ("access_token" in value or "refresh_token" in value)

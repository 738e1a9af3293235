"""Password hashing with scrypt (memory-hard), from ``cryptography``.

Stored form: ``scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>`` so that the
cost can rise later while old hashes keep verifying.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

_R = 8
_P = 1
_LEN = 32
MAX_PASSWORD_LENGTH = 512
_T = TypeVar("_T")


def _derive(password: str, salt: bytes, log_n: int, r: int, p: int) -> bytes:
    kdf = Scrypt(salt=salt, length=_LEN, n=2**log_n, r=r, p=p)
    return kdf.derive(password.encode("utf-8"))


def hash_password_sync(password: str, log_n: int) -> str:
    salt = os.urandom(16)
    digest = _derive(password, salt, log_n, _R, _P)
    b64 = base64.b64encode
    return f"scrypt${log_n}${_R}${_P}${b64(salt).decode()}${b64(digest).decode()}"


def verify_password_sync(password: str, stored: str) -> bool:
    try:
        scheme, log_n, r, p, salt_b64, hash_b64 = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(hash_b64)
        actual = _derive(password, base64.b64decode(salt_b64), int(log_n), int(r), int(p))
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(expected, actual)


class PasswordHasher:
    """Runs the KDF on a small dedicated pool of ``threads`` so the event loop keeps
    serving and concurrent logins cannot multiply memory: each scrypt holds
    128 * r * N bytes (32 MiB at N = 2^15) while it runs, and on the default
    thread pool (min(32, cores + 4) threads) a burst of registrations used to
    hold that many at once.  Further requests queue for a thread."""

    def __init__(self, log_n: int, threads: int = 2) -> None:
        self.log_n = log_n
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="password-hash")
        self._lock = threading.Lock()
        self._running = 0
        # The most hashes that ran at once (observability, tests).
        self.peak_running = 0
        # A hash of a random password, verified against when the user does
        # not exist, so that both paths cost the same (anti-enumeration).
        self._dummy = hash_password_sync(os.urandom(16).hex(), log_n)

    def _counted(self, work: Callable[[], _T]) -> _T:
        with self._lock:
            self._running += 1
            self.peak_running = max(self.peak_running, self._running)
        try:
            return work()
        finally:
            with self._lock:
                self._running -= 1

    async def _run(self, work: Callable[[], _T]) -> _T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, self._counted, work)

    async def hash(self, password: str) -> str:
        return await self._run(lambda: hash_password_sync(password, self.log_n))

    async def verify(self, password: str, stored: str | None) -> bool:
        if stored is None:
            await self._run(lambda: verify_password_sync(password, self._dummy))
            return False
        return await self._run(lambda: verify_password_sync(password, stored))

    def close(self) -> None:
        """Stop the pool's threads once the queued hashes are done (at shutdown)."""
        self._pool.shutdown(wait=False)

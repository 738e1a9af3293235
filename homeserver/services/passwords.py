"""Password hashing with scrypt (memory-hard), from ``cryptography``.

Stored form: ``scrypt$<log2 N>$<r>$<p>$<salt b64>$<hash b64>`` so that the
cost can rise later while old hashes keep verifying.
"""

from __future__ import annotations

import asyncio
import base64
import hmac
import os

from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

_R = 8
_P = 1
_LEN = 32
MAX_PASSWORD_LENGTH = 512


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
    """Runs the KDF in a worker thread so the event loop keeps serving."""

    def __init__(self, log_n: int) -> None:
        self.log_n = log_n
        # A hash of a random password, verified against when the user does
        # not exist, so that both paths cost the same (anti-enumeration).
        self._dummy = hash_password_sync(os.urandom(16).hex(), log_n)

    async def hash(self, password: str) -> str:
        return await asyncio.to_thread(hash_password_sync, password, self.log_n)

    async def verify(self, password: str, stored: str | None) -> bool:
        if stored is None:
            await asyncio.to_thread(verify_password_sync, password, self._dummy)
            return False
        return await asyncio.to_thread(verify_password_sync, password, stored)

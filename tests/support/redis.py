"""The Redis the tests use (PARLEY_TEST_REDIS_URL): required in CI, optional elsewhere."""

from __future__ import annotations

import os
import socket

import pytest

REDIS_URL = os.environ.get("PARLEY_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def require_redis() -> str:
    """Return the Redis URL; fail in CI and skip elsewhere when nothing listens."""
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=1):
            return REDIS_URL
    except OSError:
        if os.environ.get("CI"):
            pytest.fail("Redis must be running in CI")
        pytest.skip("no Redis on 127.0.0.1:6379")

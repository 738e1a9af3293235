"""Password hashing runs on its own bounded pool: concurrent logins queue instead of
each holding scrypt's memory at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from homeserver.config import ConfigError
from homeserver.services.passwords import PasswordHasher
from tests.support.server import serve_homeserver


async def test_concurrent_hashes_run_at_most_threads_at_once_and_all_verify() -> None:
    hasher = PasswordHasher(12, threads=2)
    try:
        passwords = [f"password {i}" for i in range(8)]
        hashes = await asyncio.gather(*(hasher.hash(p) for p in passwords))
        assert 1 <= hasher.peak_running <= 2
        checks = await asyncio.gather(*(hasher.verify(p, h) for p, h in zip(passwords, hashes, strict=True)))
        assert all(checks)
        assert not await hasher.verify("wrong", hashes[0])
        assert not await hasher.verify("anything", None)
        assert hasher.peak_running <= 2
    finally:
        hasher.close()


async def test_concurrent_registrations_share_the_configured_pool(make_config: Any) -> None:
    config = make_config(security={"password_scrypt_log_n": 12, "password_hashing_threads": 1})
    async with serve_homeserver(config) as server:
        accounts = await asyncio.gather(*(server.register() for _ in range(4)))
        assert len({a.user_id for a in accounts}) == 4
        assert server.hs.services.accounts.passwords.peak_running == 1
        login = await server.api("POST", "login", json={
            "type": "m.login.password", "password": accounts[0].password,
            "identifier": {"type": "m.id.user", "user": accounts[0].user_id}})
        assert login.status_code == 200, login.text


def test_the_thread_count_is_bounded(make_config: Any) -> None:
    for bad in (0, 65):
        with pytest.raises(ConfigError, match="password_hashing_threads"):
            make_config(security={"password_hashing_threads": bad})

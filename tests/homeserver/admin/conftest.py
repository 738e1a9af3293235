"""Fixtures for the admin API tests: a homeserver with shared-secret registration and an admin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.homeserver.admin.helpers import SECRET, register_with_secret
from tests.support.server import Account, RunningServer, serve_homeserver


@pytest.fixture
async def server(make_config: Any) -> AsyncIterator[RunningServer]:
    config = make_config(registration={"open": True, "require_email": False, "shared_secret": SECRET})
    async with serve_homeserver(config) as running:
        yield running


@pytest.fixture
async def admin(server: RunningServer) -> Account:
    return await register_with_secret(server, "root", "admin password 1", admin=True)

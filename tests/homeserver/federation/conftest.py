"""Two federating homeservers (hs1.localhost, hs2.localhost), TLS from the test's CA."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.support.federation import Cluster, cluster


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path, 2) as servers:
        yield servers

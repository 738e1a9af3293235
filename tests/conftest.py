"""Shared fixtures: a real database (SQLite or MariaDB), real homeservers, a real SMTP sink.

``PARLEY_TEST_DB=mysql`` runs everything against MariaDB (``PARLEY_TEST_MYSQL_URL``,
default root@127.0.0.1:3306); each xdist worker gets its own database,
dropped at the end of the session.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.databases import mysql_database
from tests.support.preimport import preimport
from tests.support.s3 import S3Server, s3_server
from tests.support.server import RunningServer, serve_homeserver, test_config
from tests.support.smtp import SmtpSink

preimport()  # before any server thread starts (see tests/support/preimport.py)


def _backend() -> str:
    return os.environ.get("PARLEY_TEST_DB", "sqlite")


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if _backend() == "mysql":
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        with mysql_database(f"parley_test_{worker}") as url:
            yield url
    else:
        path = tmp_path_factory.mktemp("db") / "parley.db"
        yield f"sqlite://{path}"


@pytest.fixture(scope="session")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3-compatible server (moto's) for this worker; tests make their own buckets."""
    with s3_server(tmp_path_factory.mktemp("s3") / "moto.log") as server:
        yield server


@pytest.fixture
def make_config(database_url: str, tmp_path: Path) -> Any:
    def build(**overrides: Any) -> Any:
        data_dir = tmp_path / f"data-{secrets.token_hex(3)}"
        return test_config(database_url, data_dir, overrides)

    return build


@pytest.fixture
async def server(make_config: Any) -> AsyncIterator[RunningServer]:
    async with serve_homeserver(make_config()) as running:
        yield running


@pytest.fixture
async def smtp_sink() -> AsyncIterator[SmtpSink]:
    sink = SmtpSink()
    sink.start()
    try:
        yield sink
    finally:
        sink.stop()

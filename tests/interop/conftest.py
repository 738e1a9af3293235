"""Parley and a real Synapse federating over TLS on loopback (``tox -e federation``).

* ``synapse``: one Synapse per test session (``tests/support/synapse.py``), its
  own virtualenv; installed when missing.  When it cannot be installed the
  tests are skipped with the reason, except under ``CI``, where that fails.
* ``parley``: a Parley homeserver per test, named ``localhost:<its port>``,
  its federation and client API on one TLS port with a certificate from the
  same CA, trusting that CA; SQLite, or MariaDB with ``PARLEY_TEST_DB=mysql``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.databases import mysql_database
from tests.support.server import RunningServer, free_port, serve_homeserver, test_config
from tests.support.synapse import SynapseClient, SynapseProcess, synapse_python
from tests.support.test_ca import TestCA


@pytest.fixture(scope="session")
def interop_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("interop-ca"))


@pytest.fixture(scope="session")
def synapse_server(interop_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[SynapseProcess]:
    python, detail = synapse_python(install=True)
    if python is None:
        if os.environ.get("CI"):
            pytest.fail(f"Synapse is required under CI and could not be installed: {detail}")
        pytest.skip(f"Synapse could not be installed ({detail}); the interop tests need it")
    node = SynapseProcess("synapse", tmp_path_factory.mktemp("synapse"), python=python, ca=interop_ca)
    node.start(timeout=180)
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
async def synapse(synapse_server: SynapseProcess) -> AsyncIterator[SynapseClient]:
    client = synapse_server.client()
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def parley(interop_ca: TestCA, tmp_path: Path) -> AsyncIterator[RunningServer]:
    port = free_port()
    name = f"localhost:{port}"
    cert, key = interop_ca.issue("localhost", stem=f"parley-{port}")
    with contextlib.ExitStack() as stack:
        if os.environ.get("PARLEY_TEST_DB", "sqlite") == "mysql":
            url = stack.enter_context(mysql_database("parley_interop"))
        else:
            url = f"sqlite://{tmp_path / 'parley.db'}"
        config = test_config(url, tmp_path / "parley", {
            "server_name": name,
            "public_baseurl": f"https://{name}",
            "federation": {"ca_file": interop_ca.ca_file, "tls_cert_file": cert, "tls_key_file": key,
                           "listener": f"127.0.0.1:{port}", "retry_min_ms": 200, "retry_max_ms": 2000},
        })
        async with serve_homeserver(config, port=port, tls=(cert, key, interop_ca.ca_file)) as running:
            yield running

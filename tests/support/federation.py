"""Several Parley homeservers that federate: real servers on loopback, TLS from a test CA.

Each server has its own database (a SQLite file, or a MariaDB database of
its own with ``PARLEY_TEST_DB=mysql``): two servers in one database would
share room rows.  Names are ``hs1.localhost``, ``hs2.localhost``, ... and
``[federation] overrides`` maps every name to its loopback port, so
discovery, Host headers and certificate names are those of the server names.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.databases import mysql_database
from tests.support.server import RunningServer, _merge, free_port, serve_homeserver, test_config
from tests.support.test_ca import TestCA


@dataclass
class Node:
    name: str
    port: int
    database_url: str
    data_dir: Path
    tls: tuple[str, str, str]
    extra: dict[str, Any] = field(default_factory=dict)


class Cluster:
    """The servers of one test; ``start``/``stop`` each one (a stopped server keeps its database)."""

    def __init__(self, directory: Path, count: int, stack: contextlib.ExitStack) -> None:
        self.ca = TestCA.create(directory / "ca")
        self.nodes: dict[str, Node] = {}
        self.running: dict[str, RunningServer] = {}
        self._contexts: dict[str, Any] = {}
        for index in range(1, count + 1):
            name = f"hs{index}.localhost"
            if os.environ.get("PARLEY_TEST_DB", "sqlite") == "mysql":
                url = stack.enter_context(mysql_database(f"parley_fed{index}"))
            else:
                url = f"sqlite://{directory / f'{name}.db'}"
            cert, key = self.ca.issue(name)
            self.nodes[name] = Node(name, free_port(), url, directory / name, (cert, key, self.ca.ca_file))

    @property
    def overrides(self) -> str:
        return ",".join(f"{node.name}=127.0.0.1:{node.port}" for node in self.nodes.values())

    def config(self, name: str, **extra: Any) -> Any:
        node = self.nodes[name]
        settings = _merge({
            "server_name": name,
            "public_baseurl": f"https://{name}:{node.port}",
            "federation": {"ca_file": self.ca.ca_file, "overrides": self.overrides,
                           "tls_cert_file": node.tls[0], "tls_key_file": node.tls[1],
                           "listener": f"127.0.0.1:{node.port}", "retry_min_ms": 200, "retry_max_ms": 2000},
        }, _merge(node.extra, extra))
        return test_config(node.database_url, node.data_dir, settings)

    async def start(self, name: str, wrap: Callable[[Any], Any] | None = None, **extra: Any) -> RunningServer:
        """Start ``name``; ``wrap``: an ASGI middleware in front of its app (see ``serve_homeserver``)."""
        node = self.nodes[name]
        context = serve_homeserver(self.config(name, **extra), port=node.port, tls=node.tls, wrap=wrap)
        running = await context.__aenter__()
        self._contexts[name], self.running[name] = context, running
        return running

    async def stop(self, name: str) -> None:
        context = self._contexts.pop(name)
        self.running.pop(name)
        # Idle HTTP/2 connections of the others would hold its shutdown for the grace period.
        for other in self.running.values():
            await other.hs.federation.client.close_connections()
        await context.__aexit__(None, None, None)

    async def stop_all(self) -> None:
        for name in list(self._contexts):
            await self.stop(name)


@contextlib.contextmanager
def _stack() -> Iterator[contextlib.ExitStack]:
    with contextlib.ExitStack() as stack:
        yield stack


@contextlib.asynccontextmanager
async def cluster(directory: Path, count: int = 2, start: bool = True) -> AsyncIterator[Cluster]:
    with _stack() as stack:
        servers = Cluster(directory, count, stack)
        try:
            if start:
                for name in servers.nodes:
                    await servers.start(name)
            yield servers
        finally:
            await servers.stop_all()

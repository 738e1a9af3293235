"""Several Parley homeservers as real processes (``python -m homeserver``) that federate over TLS.

Each server is its own process with its own database (a SQLite file, or a
MariaDB database of its own with ``PARLEY_TEST_DB=mysql``), a plain-HTTP
client listener for the test's users and a TLS federation listener with a
certificate from the test's CA.  Every server reaches every other one
through a TCP forwarder of its own (``[federation] overrides``), so a test
can cut the link between two servers (both directions) while the others
still talk, and stopping a server is a real SIGTERM of its process; it
starts again on the same ports and database.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.databases import mysql_database
from tests.support.instances import InstanceProcess, write_instance_config
from tests.support.server import ClientCalls, free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.test_ca import TestCA


@dataclass
class ProcessServer(ClientCalls):
    """One running server as its users see it (``register``, ``api`` as for in-process servers)."""

    name: str
    base_url: str
    database_url: str
    client: httpx.AsyncClient
    _counter: int = field(default=0)


@dataclass
class _Node:
    name: str
    fed_port: int
    database_url: str
    process: InstanceProcess
    # destination -> the forwarder this server's requests to it go through
    links: dict[str, TcpProxy]


class ProcessCluster:
    """The servers of one test: ``start``/``stop`` a server, ``cut``/``mend`` the link between two."""

    def __init__(self, directory: Path, count: int, stack: contextlib.ExitStack) -> None:
        self.ca = TestCA.create(directory / "ca")
        self.running: dict[str, ProcessServer] = {}
        names = [f"hs{index}.localhost" for index in range(1, count + 1)]
        fed_ports = {name: free_port() for name in names}
        self.nodes: dict[str, _Node] = {}
        for index, name in enumerate(names, 1):
            if os.environ.get("PARLEY_TEST_DB", "sqlite") == "mysql":
                url = stack.enter_context(mysql_database(f"parley_proc{index}"))
            else:
                url = f"sqlite://{directory / f'{name}.db'}"
            links = {other: TcpProxy("127.0.0.1", fed_ports[other]) for other in names if other != name}
            overrides = ",".join([f"{name}=127.0.0.1:{fed_ports[name]}"]
                                 + [f"{other}=127.0.0.1:{proxy.port}" for other, proxy in links.items()])
            cert, key = self.ca.issue(name)
            extra = (
                f'[federation]\nlistener = "127.0.0.1:{fed_ports[name]}"\n'
                f'tls_cert_file = "{cert}"\ntls_key_file = "{key}"\nca_file = "{self.ca.ca_file}"\n'
                f'overrides = "{overrides}"\nretry_min_ms = 200\nretry_max_ms = 2000\n'
            )
            process = _instance(directory / name, name, url, extra)
            self.nodes[name] = _Node(name, fed_ports[name], url, process, links)

    async def start_links(self) -> None:
        for node in self.nodes.values():
            for proxy in node.links.values():
                await proxy.start()

    async def start(self, name: str) -> ProcessServer:
        node = self.nodes[name]
        node.process.start()
        await node.process.wait_ready(120)
        server = ProcessServer(name, node.process.base_url, node.database_url,
                               httpx.AsyncClient(base_url=node.process.base_url, timeout=60.0))
        self.running[name] = server
        return server

    async def stop(self, name: str) -> None:
        """SIGTERM the server's process (its database stays); the links into it are dropped first, so
        the others' idle connections do not hold its shutdown, and come back (refusing) at once."""
        server = self.running.pop(name)
        await server.client.aclose()
        into = [node.links[name] for node in self.nodes.values() if name in node.links]
        for proxy in into:
            await proxy.cut()
        # In a thread: the forwarders (on this event loop) keep carrying its last outgoing requests.
        await asyncio.to_thread(self.nodes[name].process.stop)
        for proxy in into:
            await proxy.start()

    async def cut(self, a: str, b: str) -> None:
        """No federation between ``a`` and ``b`` (both directions) until :meth:`mend`."""
        await self.nodes[a].links[b].cut()
        await self.nodes[b].links[a].cut()

    async def mend(self, a: str, b: str) -> None:
        await self.nodes[a].links[b].start()
        await self.nodes[b].links[a].start()

    async def close(self) -> None:
        for name in list(self.running):
            await self.stop(name)
        for node in self.nodes.values():
            await asyncio.to_thread(node.process.stop)
            for proxy in node.links.values():
                await proxy.cut()

    def log(self, name: str) -> str:
        return self.nodes[name].process.log()


def _instance(folder: Path, name: str, database_url: str, extra: str) -> InstanceProcess:
    return write_instance_config(folder, name.split(".")[0], name, database_url, extra=extra)


@contextlib.asynccontextmanager
async def process_cluster(directory: Path, count: int = 3) -> AsyncIterator[ProcessCluster]:
    """``count`` servers ``hs1.localhost``, ``hs2.localhost``, ... started, stopped at the end."""
    with contextlib.ExitStack() as stack:
        servers = ProcessCluster(directory, count, stack)
        try:
            await servers.start_links()
            for name in servers.nodes:
                await servers.start(name)
            yield servers
        finally:
            await servers.close()

"""Connections for downloads: shared while downloads finish, replaced after one ends early.

httpcore (1.0) neither resets an HTTP/2 stream whose response is closed before
its end nor credits back the data that still arrives for it.  A download that
stops early (cancelled by the user, an avatar over its size cap, a failing
sink) therefore leaves its connection's flow-control window short by what the
server had already sent; the next download on that connection, typically the
resume of the cancelled one, stalls until its read timeout.

So downloads lease a client here.  One that reads its response to the end
hands the client back for reuse; one that ends early *retires* the client:
later downloads get a new one, and the retired client is closed once the
downloads still running on it are done (closing it at once would break them).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable

import httpx


class DownloadLease:
    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.complete = False

    def completed(self) -> None:
        """The response was read to its end: the connection is fit for reuse."""
        self.complete = True


class DownloadClients:
    def __init__(self, make: Callable[[], httpx.AsyncClient]) -> None:
        self._make = make
        self._current: httpx.AsyncClient | None = None
        self._users: dict[httpx.AsyncClient, int] = {}

    @contextlib.asynccontextmanager
    async def lease(self) -> AsyncIterator[DownloadLease]:
        if self._current is None:
            self._current = self._make()
        client = self._current
        self._users[client] = self._users.get(client, 0) + 1
        lease = DownloadLease(client)
        try:
            yield lease
        finally:
            self._users[client] -= 1
            if not lease.complete and client is self._current:
                self._current = None  # retired: the next download gets a fresh connection
            if client is not self._current and self._users[client] == 0:
                del self._users[client]
                await client.aclose()

    async def aclose(self) -> None:
        clients = set(self._users) | ({self._current} if self._current is not None else set())
        self._current = None
        self._users.clear()
        for client in clients:
            await client.aclose()

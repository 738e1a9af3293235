"""Stream-position claims on a connection of their own, outside the pool.

A writer claims its positions *while it holds its room's lock* (inside its
write transaction), so the claim cannot come from the pool: with every pooled
connection held by a writer waiting for a claim, none could ever be had.
One dedicated connection per instance makes every claim (a counter
``UPDATE`` and the ``stream_claims`` rows, committed at once: a few
milliseconds); claims of one instance queue on it, those of different
instances on the counter row, each held only for its short transaction.

A lost connection is opened again and the claim repeated; a claim that had
committed before the connection died is left open and expires as stale
(``STALE_CLAIM_MS``): readers wait at most that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import aiomysql
from tortoise.backends.base.config_generator import expand_db_url

from homeserver.storage.retry import transient_kind

logger = logging.getLogger(__name__)

ATTEMPTS = 4


class UnknownStreamRow(RuntimeError):
    pass


class ClaimConnection:
    def __init__(self, url: str) -> None:
        self.credentials: dict[str, Any] = expand_db_url(url)["credentials"]
        self._connection: Any = None
        self._lock = asyncio.Lock()

    async def _connect(self) -> Any:
        c = self.credentials
        return await aiomysql.connect(
            host=c.get("host", "127.0.0.1"), port=int(c.get("port", 3306)), user=c.get("user"),
            password=c.get("password") or "", db=c.get("database"), charset=c.get("charset", "utf8mb4"),
            init_command=c.get("init_command"), autocommit=False, connect_timeout=10,
        )

    async def claim(self, stream: str, count: int) -> int:
        """Move ``stream``'s counter by ``count`` and record the open claims; the last position."""
        async with self._lock:
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    if self._connection is None:
                        self._connection = await self._connect()
                    return await self._claim_once(self._connection, stream, count)
                except UnknownStreamRow:
                    raise
                except Exception as exc:
                    kind = transient_kind(exc)
                    if kind != "lock":
                        await self._drop()
                    if kind is None or attempt == ATTEMPTS:
                        raise
                    logger.warning("stream claim failed (%s), repeating: %s", kind, exc)
                    await asyncio.sleep(0.05 * attempt)
        raise AssertionError("unreachable")

    @staticmethod
    async def _claim_once(connection: Any, stream: str, count: int) -> int:
        await connection.begin()
        try:
            async with connection.cursor() as cursor:
                await cursor.execute(
                    "UPDATE stream_positions SET position = position + %s WHERE stream = %s", (count, stream)
                )
                if cursor.rowcount != 1:
                    raise UnknownStreamRow(f"stream {stream!r} was not prepared at start-up")
                await cursor.execute("SELECT position FROM stream_positions WHERE stream = %s", (stream,))
                (last,) = await cursor.fetchone()
                now = int(time.time() * 1000)
                await cursor.executemany(
                    "INSERT INTO stream_claims (stream, position, created_ms) VALUES (%s, %s, %s)",
                    [(stream, p, now) for p in range(int(last) - count + 1, int(last) + 1)],
                )
            await connection.commit()
        except BaseException:
            with contextlib.suppress(Exception):
                await connection.rollback()
            raise
        return int(last)

    async def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(Exception):
                connection.close()

    async def close(self) -> None:
        async with self._lock:
            await self._drop()

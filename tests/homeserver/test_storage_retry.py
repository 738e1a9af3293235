"""The storage layer repeats what is safe to repeat; a database that is down gives 503, never 500.

Real MariaDB failures: connections killed with ``KILL`` in the middle of a
statement, and a database made unreachable by cutting a TCP forwarder.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pymysql
import pytest
from tortoise.exceptions import OperationalError

from homeserver.api.resilience import ReplayIdempotentRequests
from homeserver.storage.database import Database
from homeserver.storage.retry import transient_kind
from tests.support.databases import MYSQL_URL, mysql_database
from tests.support.server import serve_homeserver
from tests.support.tcp_proxy import TcpProxy


def _require_mysql() -> None:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        pytest.skip("MariaDB failures (killed connections, unreachable server) need PARLEY_TEST_DB=mysql")


def _root() -> pymysql.connections.Connection:  # type: ignore[type-arg]
    return pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)


@pytest.fixture
def mysql_url() -> Iterator[str]:
    _require_mysql()
    with mysql_database("parley_retry") as url:
        yield url


@pytest.fixture
async def database(mysql_url: str) -> AsyncIterator[Database]:
    db = Database(mysql_url)
    await db.open()
    with db.activated():
        yield db
    await db.close()


def _kill_when_running(db_name: str, marker: str, killed: list[int]) -> threading.Thread:
    """Kill the connection running the statement containing ``marker`` as soon as it appears."""
    def run() -> None:
        root = _root()
        try:
            for _ in range(1000):
                with root.cursor() as cur:
                    cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND INFO LIKE %s "
                                "AND INFO NOT LIKE '%%PROCESSLIST%%'", (db_name, f"%{marker}%"))
                    found = cur.fetchone()
                    if found:
                        cur.execute(f"KILL {int(found[0])}")
                        killed.append(int(found[0]))
                        return
                threading.Event().wait(0.01)
        finally:
            root.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def _db_name(url: str) -> str:
    return url.rsplit("/", 1)[1]


async def test_a_read_whose_connection_is_killed_is_repeated(database: Database, mysql_url: str) -> None:
    killed: list[int] = []
    killer = _kill_when_running(_db_name(mysql_url), "read_probe", killed)
    row = await database.fetch_one("SELECT SLEEP(2) AS read_probe, CONNECTION_ID() AS id")
    await asyncio.to_thread(killer.join)
    assert killed, "the statement finished before it could be killed"
    assert row is not None and int(row["id"]) != killed[0]  # completed, repeated on a fresh connection


async def test_a_write_whose_connection_is_killed_is_not_repeated(database: Database, mysql_url: str) -> None:
    # Whether the server applied it is unknown: repeating could apply it twice.
    await database.execute("CREATE TABLE probe_counter (n INT NOT NULL)")
    await database.execute("INSERT INTO probe_counter (n) VALUES (0)")
    killed: list[int] = []
    killer = _kill_when_running(_db_name(mysql_url), "write_probe", killed)
    with pytest.raises(OperationalError) as failure:
        await database.execute("UPDATE probe_counter SET n = n + 1 WHERE SLEEP(2) = 0 AND 'write_probe' <> ''")
    await asyncio.to_thread(killer.join)
    assert killed
    assert transient_kind(failure.value) == "lost"


async def test_a_deadlock_is_recognised_as_safe_to_repeat(database: Database) -> None:
    await database.execute("CREATE TABLE probe_rows (id INT PRIMARY KEY, v INT) ENGINE=InnoDB")
    await database.execute("INSERT INTO probe_rows VALUES (1, 0), (2, 0)")
    first, second = Database(database.url), Database(database.url)
    errors: list[BaseException] = []
    for db in (first, second):
        await db.connect()
    try:
        async def cross(db: Database, a: int, b: int, ready: asyncio.Barrier) -> None:
            with db.activated():
                try:
                    async with db.transaction() as conn:
                        await db.execute("UPDATE probe_rows SET v = v + 1 WHERE id = ?", (a,), conn=conn)
                        await ready.wait()
                        await db.execute("UPDATE probe_rows SET v = v + 1 WHERE id = ?", (b,), conn=conn)
                except Exception as exc:
                    errors.append(exc)

        ready = asyncio.Barrier(2)
        await asyncio.gather(cross(first, 1, 2, ready), cross(second, 2, 1, ready))
    finally:
        for db in (first, second):
            await db.close()
    assert len(errors) == 1, errors
    assert transient_kind(errors[0]) == "lock"


async def test_a_database_that_is_down_gives_503_with_retry_after(mysql_url: str, make_config: Any) -> None:
    proxy = TcpProxy("127.0.0.1", 3306)
    await proxy.start()
    creds = MYSQL_URL.removeprefix("mysql://").partition("@")[0]
    config = make_config(database={"url": f"mysql://{creds}@127.0.0.1:{proxy.port}/{_db_name(mysql_url)}"})
    async with serve_homeserver(config) as server:
        alice = await server.register()
        await proxy.cut()
        for method, path, body in (("GET", "account/whoami", None), ("GET", "sync", None),
                                   ("POST", "createRoom", {}),
                                   ("PUT", "rooms/!x:y/send/m.room.message/t1", {"body": "x"})):
            response = await server.api(method, path, alice, json=body, params={"timeout": 0})
            assert response.status_code == 503, (path, response.text)
            assert response.headers["Retry-After"] == "1"
            assert response.json()["errcode"] == "M_UNKNOWN"
        await proxy.start()  # back up, on the same port
        assert (await server.api("GET", "account/whoami", alice)).status_code == 200
    await proxy.cut()


async def test_classification_of_driver_errors() -> None:
    assert transient_kind(OperationalError(pymysql.err.OperationalError(1213, "Deadlock found"))) == "lock"
    assert transient_kind(OperationalError(pymysql.err.OperationalError(1205, "Lock wait timeout"))) == "lock"
    assert transient_kind(OperationalError(pymysql.err.OperationalError(2013, "Lost connection"))) == "lost"
    assert transient_kind(OperationalError(pymysql.err.OperationalError(2003, "Can't connect"))) == "unavailable"
    assert transient_kind(pymysql.err.InterfaceError(0, "Not connected")) == "unavailable"
    assert transient_kind(OperationalError(pymysql.err.OperationalError(1064, "syntax error"))) is None
    assert transient_kind(ValueError("no")) is None


def _flaky_app(failures: int, calls: list[bytes]) -> Any:
    """An ASGI app that fails like a killed database connection ``failures`` times, then echoes the body."""
    async def app(scope: Any, receive: Any, send: Any) -> None:
        body = (await receive()).get("body", b"")
        calls.append(body)
        if len(calls) <= failures:
            raise OperationalError(pymysql.err.OperationalError(2013, "Lost connection to server during query"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    return app


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
async def test_an_idempotent_request_is_replayed_with_its_body(method: str) -> None:
    calls: list[bytes] = []
    app = ReplayIdempotentRequests(_flaky_app(2, calls))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        response = await client.request(method, "/x", content=b"same body")
    assert response.status_code == 200 and response.content == b"same body"
    assert calls == [b"same body"] * 3


async def test_a_post_is_not_replayed() -> None:
    calls: list[bytes] = []
    app = ReplayIdempotentRequests(_flaky_app(1, calls))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        with pytest.raises(OperationalError):
            await client.post("/x", content=b"once")
    assert calls == [b"once"]

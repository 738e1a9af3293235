"""The example deployment in ``conf/deployment/`` runs as written, on loopback.

Three ``python -m homeserver --config conf/deployment/homeserver.toml``
processes (name, port, database and Redis from the environment, as the
README says), a fresh MariaDB database, Redis, and HAProxy with
``conf/deployment/haproxy.cfg``.  Clients talk only to HAProxy.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import httpx
import pytest

from tests.support.databases import mysql_database
from tests.support.instances import ROOT, InstanceProcess
from tests.support.redis import require_redis
from tests.support.server import free_port

EXAMPLE = ROOT / "conf" / "deployment"


@pytest.fixture
def fresh_mysql_url() -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        pytest.skip("the example deployment runs on MariaDB: needs PARLEY_TEST_DB=mysql")
    with mysql_database("parley_example") as url:
        yield url


def _haproxy() -> str:
    path = shutil.which("haproxy") or ("/usr/sbin/haproxy" if Path("/usr/sbin/haproxy").exists() else None)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("haproxy must be installed in CI (.ci/run installs the Debian package)")
        pytest.skip("haproxy is not installed (apt-get install haproxy)")
    return path


async def _until_ok(client: httpx.AsyncClient, url: str) -> None:
    for _ in range(300):
        try:
            if (await client.get(url)).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError(f"{url} never answered 200")


def _start_haproxy(haproxy: str, env: dict[str, str], log: IO[bytes]) -> subprocess.Popen[bytes]:
    return subprocess.Popen([haproxy, "-db", "-f", str(EXAMPLE / "haproxy.cfg")], env=env,
                            stdout=log, stderr=subprocess.STDOUT)


async def test_the_example_deployment_serves_through_haproxy(fresh_mysql_url: str, tmp_path: Path) -> None:
    haproxy = _haproxy()
    redis_url = require_redis()
    instances = []
    for name in ("hs1", "hs2", "hs3"):
        instance = InstanceProcess(name, EXAMPLE / "homeserver.toml", free_port(), tmp_path / f"{name}.log")
        instance.env = {
            "PARLEY_INSTANCE_NAME": name, "PARLEY_LISTEN_PORT": str(instance.port),
            "PARLEY_DATABASE_URL": fresh_mysql_url, "PARLEY_REDIS_URL": redis_url,
            "PARLEY_DATA_DIR": str(tmp_path / f"{name}-data"), "PARLEY_MEDIA_DIR": str(tmp_path / "media"),
            # Test accounts without e-mail, and a cheaper (still non-dev) password hash.
            "PARLEY_REGISTRATION_OPEN": "true", "PARLEY_REGISTRATION_REQUIRE_EMAIL": "false",
            "PARLEY_SECURITY_PASSWORD_SCRYPT_LOG_N": "14",
        }
        instances.append(instance)
    lb_port = free_port()
    lb_env = {**os.environ, "PARLEY_LB_BIND": f"127.0.0.1:{lb_port}",
              **{f"PARLEY_HS{i}": f"127.0.0.1:{inst.port}" for i, inst in enumerate(instances, 1)}}
    lb_log = open(tmp_path / "haproxy.log", "wb")  # noqa: ASYNC230 - a log file for a child process
    lb: subprocess.Popen[bytes] | None = None
    try:
        for instance in instances:
            instance.start()
        await asyncio.gather(*(i.wait_ready() for i in instances))
        lb = _start_haproxy(haproxy, lb_env, lb_log)
        base = f"http://127.0.0.1:{lb_port}"
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            try:
                await _until_ok(client, "/ready")
            except AssertionError:
                raise AssertionError((tmp_path / "haproxy.log").read_text()) from None
            names = {(await client.get("/health")).json()["instance"] for _ in range(30)}
            assert names == {"hs1", "hs2", "hs3"}, "HAProxy spreads requests over every instance"

            body = {"username": "alice", "password": "correct horse 1", "auth": {"type": "m.login.dummy"}}
            registered = await client.post("/_matrix/client/v3/register", json=body)
            assert registered.status_code == 200, registered.text
            auth = {"Authorization": f"Bearer {registered.json()['access_token']}"}
            room = (await client.post("/_matrix/client/v3/createRoom", json={}, headers=auth)).json()["room_id"]

            instances[1].kill9()  # one instance dies; HAProxy routes around it
            for i in range(12):
                sent = await client.put(f"/_matrix/client/v3/rooms/{room}/send/m.room.message/t{i}",
                                        json={"msgtype": "m.text", "body": f"m{i}"}, headers=auth)
                assert sent.status_code == 200, sent.text
            synced = await client.get("/_matrix/client/v3/sync", headers=auth,
                                      params={"filter": '{"room": {"timeline": {"limit": 50}}}'})
            timeline = synced.json()["rooms"]["join"][room]["timeline"]["events"]
            assert [e["content"]["body"] for e in timeline if e["type"] == "m.room.message"] == \
                [f"m{i}" for i in range(12)]
    finally:
        if lb is not None:
            lb.terminate()
            lb.wait(10)
        lb_log.close()
        for instance in instances:
            instance.stop()

"""Running behind a load balancer: /health, /ready and trusted X-Forwarded-For."""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from homeserver.api.proxy import TrustedProxyMiddleware
from homeserver.config import ConfigError
from homeserver.services.clock import ManualClock
from tests.support.databases import MYSQL_URL, mysql_database
from tests.support.redis import require_redis
from tests.support.server import serve_homeserver
from tests.support.tcp_proxy import TcpProxy


async def test_health_names_the_instance(make_config: Any) -> None:
    async with serve_homeserver(make_config(instance_name="hs-a")) as server:
        response = await server.api("GET", "/health")
        assert response.status_code == 200
        assert response.json() == {"status": "ok", "instance": "hs-a"}


@pytest.mark.parametrize("with_redis", [False, True])
async def test_ready_checks_database_schema_and_redis(make_config: Any, with_redis: bool) -> None:
    overrides = {"redis_url": require_redis()} if with_redis else {}
    async with serve_homeserver(make_config(**overrides)) as server:
        response = await server.api("GET", "/ready")
        assert response.status_code == 200, response.text
        expected = {"database": True, "migrations": True, "accepting": True}
        if with_redis:
            expected["redis"] = True
        assert response.json()["checks"] == expected
        # Shutting down: the load balancer must stop sending work here.
        server.hs.services.notifier.wake_all()
        draining = await server.api("GET", "/ready")
        assert draining.status_code == 503
        assert draining.json()["checks"]["accepting"] is False


@pytest.fixture
def own_database_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own (its schema gets changed), on the backend of this run."""
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        yield f"sqlite://{tmp_path / 'own.db'}"
        return
    with mysql_database("parley_own") as url:
        yield url


async def test_an_old_instance_keeps_serving_while_a_newer_release_migrates(make_config: Any,
                                                                             own_database_url: str) -> None:
    config = make_config(database={"url": own_database_url})
    async with serve_homeserver(config) as server:
        # A newer release started and applied a migration this instance does not know.
        await server.hs.database.execute("INSERT INTO schema_version (version, applied_ts) VALUES (9999, 0)")
        assert (await server.api("GET", "/ready")).status_code == 200
        alice = await server.register()
        assert (await server.api("POST", "createRoom", alice, json={})).status_code == 200
        # A schema that lacks one of its own migrations is not one it can serve.
        await server.hs.database.execute("DELETE FROM schema_version WHERE version = 40")
        response = await server.api("GET", "/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["migrations"] is False


async def test_not_ready_when_the_database_is_down(make_config: Any) -> None:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        pytest.skip("needs PARLEY_TEST_DB=mysql")
    proxy = TcpProxy("127.0.0.1", 3306)
    await proxy.start()
    creds = MYSQL_URL.removeprefix("mysql://").partition("@")[0]
    with mysql_database("parley_ready") as url:
        name = url.rsplit("/", 1)[1]
        config = make_config(database={"url": f"mysql://{creds}@127.0.0.1:{proxy.port}/{name}"})
        async with serve_homeserver(config) as server:
            await proxy.cut()
            response = await server.api("GET", "/ready")
            assert response.status_code == 503
            assert response.json()["checks"]["database"] is False
            assert (await server.api("GET", "/health")).status_code == 200


def _middleware(trusted: str) -> TrustedProxyMiddleware:
    networks = [ipaddress.ip_network(t.strip()) for t in trusted.split(",") if t.strip()]
    return TrustedProxyMiddleware(lambda s, r, w: None, networks)  # type: ignore[arg-type,return-value]


def test_forwarded_for_is_believed_only_from_trusted_proxies() -> None:
    proxies = _middleware("10.0.0.0/8, 127.0.0.1")
    assert proxies.client_address("127.0.0.1", ["203.0.113.5"]) == "203.0.113.5"
    # The client may prepend anything; the right-most untrusted hop is the one a proxy saw.
    assert proxies.client_address("127.0.0.1", ["1.1.1.1, 203.0.113.5, 10.1.2.3"]) == "203.0.113.5"
    assert proxies.client_address("127.0.0.1", ["1.1.1.1", "203.0.113.5"]) == "203.0.113.5"
    # Anyone else's header is ignored.
    assert proxies.client_address("198.51.100.7", ["203.0.113.5"]) == "198.51.100.7"
    assert proxies.client_address("127.0.0.1", ["not-an-address"]) == "127.0.0.1"
    assert _middleware("").client_address("127.0.0.1", ["203.0.113.5"]) == "127.0.0.1"


def test_bad_trusted_proxies_are_refused(make_config: Any) -> None:
    with pytest.raises(ConfigError, match="trusted_proxies"):
        make_config(trusted_proxies="10.0.0.0/8, not-a-network")


@pytest.mark.parametrize("trusted", [True, False])
async def test_rate_limits_key_on_the_forwarded_client(make_config: Any, trusted: bool) -> None:
    config = make_config(trusted_proxies="127.0.0.1" if trusted else "",
                         rate_limits={"register_per_minute": 2})

    async def register(ip: str, n: int) -> int:
        response = await server.api("GET", "register/available", params={"username": f"free{n}"},
                                    headers={"X-Forwarded-For": ip})
        return response.status_code

    # A clock that stands still: the three hits cannot straddle two rate-limit windows.
    async with serve_homeserver(config, clock=ManualClock()) as server:
        assert [await register("203.0.113.1", n) for n in range(3)] == [200, 200, 429]
        # Another client behind the same proxy has its own budget, when the proxy is trusted.
        assert await register("203.0.113.2", 9) == (200 if trusted else 429)

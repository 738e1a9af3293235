"""/metrics during real traffic: the series operators graph, loopback-only access, the
separate metrics listener, request ids and JSON log lines."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from pathlib import Path
from typing import Any

import httpx
from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig
from prometheus_client.parser import text_string_to_metric_families

from homeserver.api.metrics import metrics_app
from homeserver.logs import JsonFormatter, RequestIdFilter, current_request_id
from tests.homeserver.room_helpers import create_room, send_text, sync
from tests.support.redis import require_redis
from tests.support.server import RunningServer, free_port, serve_homeserver

SEND = "/_matrix/client/v3/rooms/{room_id}/send/{event_type}/{txn_id}"


def _samples(text: str) -> dict[str, list[Any]]:
    found: dict[str, list[Any]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample)
    return found


async def test_metrics_during_traffic(make_config: Any) -> None:
    config = make_config(redis_url=require_redis())
    async with serve_homeserver(config) as server:
        alice = await server.register("alice")
        bob = await server.register("bob")
        room = await create_room(server, alice, invite=[bob.user_id])
        expect_ok = await server.api("POST", f"rooms/{room}/join", bob)
        assert expect_ok.status_code == 200
        since = (await sync(server, bob))["next_batch"]
        poll = asyncio.create_task(sync(server, bob, since=since, timeout=30_000))
        notifier = server.hs.services.notifier
        for _ in range(1000):
            if notifier.waiting_users >= 1:
                break
            await asyncio.sleep(0.01)
        during = _samples((await server.client.get("/metrics")).text)
        assert during["parley_sync_waiters"][0].value >= 1
        await send_text(server, alice, room, "hello")
        await poll
        response = await server.client.get("/metrics")
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/plain")
        samples = _samples(response.text)

    sends = [s for s in samples["parley_http_requests_total"]
             if s.labels["endpoint"] == SEND and s.labels["method"] == "PUT"]
    assert sends and sends[0].labels["status"] == "200" and sends[0].value >= 1
    latency = [s for s in samples["parley_http_request_duration_seconds_count"] if s.labels["endpoint"] == SEND]
    assert latency and latency[0].value >= 1
    assert samples["parley_notifier_wakeups_total"][0].value >= 1
    assert samples["parley_event_persist_seconds_count"][0].value >= 3
    assert samples["parley_db_query_seconds_count"][0].value > 0
    pool = {s.labels["state"]: s.value for s in samples["parley_db_pool_connections"]}
    assert set(pool) == {"open", "idle", "max"} and pool["max"] >= 1
    assert samples["parley_redis_up"][0].value == 1
    assert "parley_http_requests_in_flight" in samples
    # Unknown paths do not create a series each.
    assert all(s.labels["endpoint"] != "/nothing/here" for s in samples["parley_http_requests_total"])


async def test_metrics_refused_to_remote_clients(server: RunningServer) -> None:
    transport = httpx.ASGITransport(app=server.app, client=("203.0.113.7", 40000))
    async with httpx.AsyncClient(transport=transport, base_url="http://parley.test") as remote:
        response = await remote.get("/metrics")
    assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
    assert (await server.client.get("/metrics")).status_code == 200
    # Through a reverse proxy on the same host the client address is loopback too.
    proxied = await server.client.get("/metrics", headers={"X-Forwarded-For": "198.51.100.1"})
    assert proxied.status_code == 403


async def test_separate_metrics_listener(make_config: Any) -> None:
    port = free_port()
    async with serve_homeserver(make_config(admin={"metrics_listener": f"127.0.0.1:{port}"})) as server:
        assert (await server.client.get("/metrics")).status_code == 404
        hc = HypercornConfig()
        hc.bind = [f"127.0.0.1:{port}"]
        hc.accesslog = hc.errorlog = None
        stop = asyncio.Event()
        task = asyncio.create_task(serve(metrics_app(server.hs), hc, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
        try:
            async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
                for _ in range(200):
                    try:
                        response = await client.get("/metrics")
                        break
                    except httpx.TransportError:
                        await asyncio.sleep(0.02)
                assert response.status_code == 200
                assert "parley_http_requests_total" in response.text
        finally:
            stop.set()
            await task


async def test_request_ids_and_json_log_lines(server: RunningServer) -> None:
    echoed = await server.client.get("/_matrix/client/versions", headers={"X-Request-ID": "abc-123"})
    assert echoed.headers["x-request-id"] == "abc-123"
    fresh = await server.client.get("/_matrix/client/versions", headers={"X-Request-ID": "bad id\x01"})
    assert fresh.headers["x-request-id"] != "bad id\x01" and len(fresh.headers["x-request-id"]) == 16
    token = current_request_id.set("req-42")
    try:
        record = logging.LogRecord("homeserver.test", logging.WARNING, __file__, 1, "hello %s", ("world",), None)
        RequestIdFilter().filter(record)
        line = json.loads(JsonFormatter().format(record))
    finally:
        current_request_id.reset(token)
    assert line["message"] == "hello world" and line["request_id"] == "req-42"
    assert line["level"] == "WARNING" and line["logger"] == "homeserver.test" and line["ts"].endswith("Z")


async def test_grafana_dashboard_graphs_only_series_the_server_exports(make_config: Any) -> None:
    dashboard = json.loads((Path(__file__).parents[2] / "conf" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\bparley_[a-z_]+", e)}
    async with serve_homeserver(make_config(redis_url=require_redis())) as server:
        alice = await server.register("alice")
        await send_text(server, alice, await create_room(server, alice), "hi")
        exported = set(_samples((await server.client.get("/metrics")).text))
    assert len(used) >= 8 and used <= exported, used - exported

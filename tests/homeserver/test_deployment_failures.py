"""Three real instances of one deployment on a fresh MariaDB database, under failures.

The instances (``python -m homeserver`` processes with their own data
folders) start at the same moment.  Concurrent senders and long-polling
readers then talk to instances picked at random, as clients behind a load
balancer would, while the test ``kill -9``s one instance (and later starts it
again) and kills every database connection of the deployment.  Clients do
what Matrix clients do: a send whose connection broke is repeated with the
same transaction id, a sync with the same ``since``.  Every reader must get
every message exactly once, in one order shared by all readers and
consistent with each sender's order, and no request may get a 500.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pymysql
import pytest

from homeserver.services.sync_api import SyncToken
from tests.support.databases import mysql_database
from tests.support.instances import InstanceProcess, write_instance_config
from tests.support.redis import require_redis

SENDERS, MESSAGES, READERS = 3, 40, 3
TIMELINE_FILTER = json.dumps({"room": {"timeline": {"limit": 1000, "types": ["m.room.message"]}}})


@pytest.fixture
def fresh_mysql_url() -> Iterator[str]:
    if os.environ.get("PARLEY_TEST_DB", "sqlite") != "mysql":
        pytest.skip("several instances share one MariaDB database: needs PARLEY_TEST_DB=mysql")
    with mysql_database("parley_chaos") as url:
        yield url


@dataclass
class Cluster:
    instances: list[InstanceProcess]
    client: httpx.AsyncClient
    down: set[str] = field(default_factory=set)
    statuses: list[int] = field(default_factory=list)
    transport_errors: int = 0

    def live(self) -> list[InstanceProcess]:
        return [i for i in self.instances if i.name not in self.down]

    async def request(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        for _ in range(200):
            instance = random.choice(self.live())
            try:
                response = await self.client.request(method, instance.base_url + path, headers=headers, **kwargs)
                response.extensions["instance"] = instance.name
            except httpx.TransportError:
                self.transport_errors += 1  # that instance died under us: another one, as a balancer would
                await asyncio.sleep(0.05)
                continue
            self.statuses.append(response.status_code)
            if response.status_code == 503:
                await asyncio.sleep(0.2)
                continue
            return response
        raise AssertionError(f"{method} {path} never succeeded")


def _kill_database_connections(database: str) -> int:
    root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", autocommit=True)
    killed = 0
    try:
        with root.cursor() as cur:
            cur.execute("SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                        (database,))
            for (connection_id,) in cur.fetchall():
                with contextlib.suppress(pymysql.err.OperationalError):
                    cur.execute(f"KILL {int(connection_id)}")
                    killed += 1
    finally:
        root.close()
    return killed


async def _register(cluster: Cluster, name: str) -> tuple[str, str]:
    body = {"username": f"{name}{secrets.token_hex(2)}", "password": "correct horse 1",
            "auth": {"type": "m.login.dummy"}}
    response = await cluster.request("POST", "/_matrix/client/v3/register", json=body)
    assert response.status_code == 200, response.text
    data = response.json()
    return data["user_id"], data["access_token"]


@pytest.mark.parametrize("bus", ["database-queue", "redis"])
async def test_three_instances_lose_duplicate_and_reorder_nothing_under_kill_9(
    fresh_mysql_url: str, tmp_path: Path, bus: str
) -> None:
    redis_url = require_redis() if bus == "redis" else ""
    server_name = f"c{secrets.token_hex(3)}.localhost"
    instances = [write_instance_config(tmp_path, f"hs{i}", server_name, fresh_mysql_url, redis_url)
                 for i in range(1, 4)]
    database = fresh_mysql_url.rsplit("/", 1)[1]
    for instance in instances:  # all at once, on an empty database
        instance.start()
    async with httpx.AsyncClient(timeout=60) as client:
        cluster = Cluster(instances, client)
        try:
            await asyncio.gather(*(i.wait_ready() for i in instances))
            await _run_traffic_with_failures(cluster, database)
        finally:
            for instance in instances:
                instance.stop()
    assert 500 not in cluster.statuses, [s for s in cluster.statuses if s >= 500]
    print(f"{bus}: {len(cluster.statuses)} answers, {cluster.statuses.count(503)} x 503, "
          f"{cluster.transport_errors} broken connections (the killed instance)")


async def _run_traffic_with_failures(cluster: Cluster, database: str) -> None:
    owner_id, owner_token = await _register(cluster, "owner")
    senders = [await _register(cluster, f"s{i}") for i in range(SENDERS)]
    readers = [await _register(cluster, f"r{i}") for i in range(READERS)]
    created = await cluster.request("POST", "/_matrix/client/v3/createRoom", owner_token,
                                    json={"preset": "public_chat"})
    room = created.json()["room_id"]
    for _, token in [*senders, *readers]:
        joined = await cluster.request("POST", f"/_matrix/client/v3/join/{room}", token, json={})
        assert joined.status_code == 200, joined.text

    sent: dict[str, list[str]] = {user_id: [] for user_id, _ in senders}
    progress = asyncio.Event()
    done_sending = asyncio.Event()

    async def send_all(user_id: str, token: str) -> None:
        for i in range(MESSAGES):
            path = f"/_matrix/client/v3/rooms/{room}/send/m.room.message/txn{i}"
            response = await cluster.request("PUT", path, token, json={"msgtype": "m.text", "body": f"{user_id} {i}"})
            assert response.status_code == 200, response.text
            sent[user_id].append(response.json()["event_id"])
            progress.set()

    progress_of: dict[str, list[str]] = {}
    history: dict[str, list[tuple[Any, int, int, int]]] = {}

    async def read_all(token: str) -> list[str]:
        initial = await cluster.request("GET", "/_matrix/client/v3/sync", token,
                                        params={"filter": TIMELINE_FILTER, "timeout": 0})
        since = initial.json()["next_batch"]
        seen: list[str] = progress_of.setdefault(token, [])
        # Messages sent before this first sync come in its timeline.
        first = initial.json()["rooms"]["join"].get(room, {}).get("timeline", {})
        assert not first.get("limited")
        seen.extend(e["event_id"] for e in first.get("events", []))
        while True:
            expected = {e for ids in sent.values() for e in ids}
            if done_sending.is_set() and expected <= set(seen):
                return seen
            response = await cluster.request("GET", "/_matrix/client/v3/sync", token, timeout=60,
                                             params={"since": since, "timeout": 3000, "filter": TIMELINE_FILTER})
            assert response.status_code == 200, response.text
            body = response.json()
            timeline = body.get("rooms", {}).get("join", {}).get(room, {}).get("timeline")
            history.setdefault(token, []).append(
                (response.extensions.get("instance"), SyncToken.decode(since).get("events"),
                 SyncToken.decode(body["next_batch"]).get("events"), len((timeline or {}).get("events", []))))
            if timeline:
                assert not timeline.get("limited"), "a gap: the reader would have skipped events"
                seen.extend(e["event_id"] for e in timeline["events"])
            since = body["next_batch"]

    async def chaos() -> None:
        total = SENDERS * MESSAGES
        victim = random.choice(cluster.instances)
        await _until_sent(sent, progress, total // 4)
        cluster.down.add(victim.name)
        victim.kill9()
        await _until_sent(sent, progress, total // 2)
        for _ in range(3):
            await asyncio.to_thread(_kill_database_connections, database)
            await asyncio.sleep(0.2)
        await _until_sent(sent, progress, 3 * total // 4)
        victim.start()  # back after the crash, on the same port
        await victim.wait_ready()
        cluster.down.discard(victim.name)

    reading = [asyncio.create_task(read_all(token)) for _, token in readers]
    chaos_task = asyncio.create_task(chaos())
    await asyncio.gather(*(send_all(user_id, token) for user_id, token in senders))
    done_sending.set()
    await chaos_task
    try:
        seen_by = await asyncio.wait_for(asyncio.gather(*reading), 120)
    except TimeoutError:
        everything = {e for ids in sent.values() for e in ids}
        missing = {t: sorted(everything - set(seen)) for t, seen in progress_of.items()}
        detail = []
        for token, event_ids in missing.items():
            for event_id in event_ids:
                pos = _stream_pos(database, event_id)
                detail.append((event_id, pos, [h for h in history.get(token, []) if h[1] < pos <= h[2]]))
        raise AssertionError(f"readers never got everything: {detail}") from None

    everything = {e for ids in sent.values() for e in ids}
    assert len(everything) == SENDERS * MESSAGES, "a repeated send made a second event"
    for seen in seen_by:
        assert len(seen) == len(set(seen)), "a reader got an event twice"
        assert set(seen) == everything, "a reader missed events"
        for ids in sent.values():
            assert [e for e in seen if e in set(ids)] == ids, "a sender's messages arrived out of order"
    assert all(seen == seen_by[0] for seen in seen_by), "readers disagree on the order"
    del owner_id


def _stream_pos(database: str, event_id: str) -> int:
    root = pymysql.connect(host="127.0.0.1", port=3306, user="root", password="", database=database)
    try:
        with root.cursor() as cur:
            cur.execute("SELECT stream_pos FROM events WHERE event_id = %s", (event_id,))
            row = cur.fetchone()
            return int(row[0]) if row else -1
    finally:
        root.close()


async def _until_sent(sent: dict[str, list[str]], progress: asyncio.Event, count: int) -> None:
    while sum(len(ids) for ids in sent.values()) < count:
        progress.clear()
        await progress.wait()

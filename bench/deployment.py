"""``python -m bench.deployment``: 1 vs 3 instances, single vs several event writers, side by side.

Each run starts real ``python -m homeserver`` processes on one fresh MariaDB
database (and Redis when ``--redis`` is given), registers users in a few
rooms, keeps one long-poll per user open on the instances in turn, then
sends messages at a fixed concurrency spread over the instances and reports:

* send throughput (messages/s from the first send to the last answer),
* delivery latency p50 / p99: from the start of a send to the moment a
  member's /sync returned the message (every member of the room counts).

Runs: 1 instance and 3 instances, each with the ``events`` stream's single
writer row lock (``multi_writer = false``) and with claimed positions
(``multi_writer = true``).  Needs MariaDB on 127.0.0.1:3306 (root, no password).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
V3 = "/_matrix/client/v3"
FILTER = json.dumps({"presence": {"types": []}, "account_data": {"types": []},
                     "room": {"timeline": {"limit": 1000}, "ephemeral": {"types": []}}})


@dataclass(frozen=True)
class Result:
    instances: int
    multi_writer: bool
    messages: int
    seconds: float
    p50_ms: float
    p99_ms: float

    @property
    def throughput(self) -> float:
        return self.messages / self.seconds


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _database(mysql: str) -> tuple[str, str]:
    import pymysql

    name = f"parley_bench_{secrets.token_hex(3)}"
    host, _, port = mysql.partition(":")
    conn = pymysql.connect(host=host, port=int(port or 3306), user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"CREATE DATABASE {name} CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin")
    conn.close()
    return name, f"mysql://root:@{mysql}/{name}"


def _drop(mysql: str, name: str) -> None:
    import pymysql

    host, _, port = mysql.partition(":")
    conn = pymysql.connect(host=host, port=int(port or 3306), user="root", password="")
    with conn.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}")
    conn.close()


def _start(folder: Path, name: str, url: str, redis: str, multi_writer: bool) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    config = folder / f"{name}.toml"
    config.write_text(
        f'server_name = "bench.localhost"\ndev_mode = true\ninstance_name = "{name}"\n'
        f'data_dir = "{folder / name}"\nredis_url = "{redis}"\n'
        f'[[listeners]]\nhost = "127.0.0.1"\nport = {port}\n'
        f'[database]\nurl = "{url}"\npool_max = 20\nmulti_writer = {str(multi_writer).lower()}\n'
        '[registration]\nopen = true\nrequire_email = false\n[security]\npassword_scrypt_log_n = 10\n'
        '[rate_limits]\nenabled = false\n'
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}
    env["PYTHONPATH"] = str(ROOT)
    log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 - the child's log, closed with the run's folder
    proc = subprocess.Popen([sys.executable, "-m", "homeserver", "--config", str(config)],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}"


async def _ready(client: httpx.AsyncClient, base: str) -> None:
    for _ in range(600):
        with contextlib.suppress(httpx.TransportError):
            if (await client.get(base + "/ready")).status_code == 200:
                return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"{base} never became ready")


async def _load(bases: list[str], users: int, rooms: int, messages: int, concurrency: int) -> tuple[float, list[float]]:
    async with httpx.AsyncClient(timeout=120, limits=httpx.Limits(max_connections=500)) as client:
        async def call(i: int, method: str, path: str, token: str | None = None, **kw: Any) -> Any:
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            for attempt in range(5):
                try:
                    response = await client.request(method, bases[i % len(bases)] + path, headers=headers, **kw)
                except httpx.TransportError:
                    # A kept-alive connection the server closed meanwhile: repeat, as clients do.
                    if attempt == 4:
                        raise
                    await asyncio.sleep(0.1)
                    continue
                response.raise_for_status()
                return response.json()
            raise AssertionError("unreachable")

        tokens = []
        for u in range(users):
            body = {"username": f"u{u}", "password": "bench password", "auth": {"type": "m.login.dummy"}}
            tokens.append((await call(u, "POST", V3 + "/register", json=body))["access_token"])
        room_ids, members = [], []
        for r in range(rooms):
            owner = r % users
            room = (await call(r, "POST", V3 + "/createRoom", tokens[owner], json={"preset": "public_chat"}))["room_id"]
            group = [u for u in range(users) if u % rooms == r]
            for u in group:
                if u != owner:
                    await call(u, "POST", V3 + f"/join/{room}", tokens[u], json={})
            room_ids.append(room)
            members.append(set(group) | {owner})
        started: dict[str, float] = {}
        latencies: list[float] = []
        expected = {r: len(m) for r, m in enumerate(members)}
        stop = asyncio.Event()

        async def reader(u: int) -> None:
            since = (await call(u, "GET", V3 + "/sync", tokens[u], params={"filter": FILTER, "timeout": 0}))["next_batch"]
            while not stop.is_set():
                body = await call(u, "GET", V3 + "/sync", tokens[u],
                                  params={"filter": FILTER, "timeout": 2000, "since": since})
                now = time.perf_counter()
                for room in body.get("rooms", {}).get("join", {}).values():
                    for event in room.get("timeline", {}).get("events", []):
                        text = event.get("content", {}).get("body", "")
                        if text in started:
                            latencies.append(now - started[text])
                since = body["next_batch"]

        readers = [asyncio.create_task(reader(u)) for u in range(users)]
        await asyncio.sleep(1.0)
        queue = list(range(messages))

        async def sender(worker: int) -> None:
            while queue:
                m = queue.pop()
                r = m % rooms
                sender_user = sorted(members[r])[m % len(members[r])]
                text = f"bench {m}"
                started[text] = time.perf_counter()
                await call(worker + m, "PUT", V3 + f"/rooms/{room_ids[r]}/send/m.room.message/b{m}",
                           tokens[sender_user], json={"msgtype": "m.text", "body": text})

        t0 = time.perf_counter()
        await asyncio.gather(*(sender(w) for w in range(concurrency)))
        seconds = time.perf_counter() - t0
        want = sum(expected[m % rooms] for m in range(messages))
        for _ in range(300):
            if len(latencies) >= want:
                break
            await asyncio.sleep(0.1)
        stop.set()
        for task in readers:
            task.cancel()
        await asyncio.gather(*readers, return_exceptions=True)
        return seconds, latencies


async def run_one(instances: int, multi_writer: bool, args: argparse.Namespace) -> Result:
    name, url = _database(args.mysql)
    procs: list[subprocess.Popen[bytes]] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            bases = []
            for i in range(instances):
                proc, base = _start(Path(tmp), f"hs{i + 1}", url, args.redis, multi_writer)
                procs.append(proc)
                bases.append(base)
            async with httpx.AsyncClient(timeout=10) as client:
                await asyncio.gather(*(_ready(client, b) for b in bases))
            try:
                seconds, latencies = await _load(bases, args.users, args.rooms, args.messages, args.concurrency)
            except Exception:
                for i, proc in enumerate(procs):
                    log = (Path(tmp) / f"hs{i + 1}.log").read_text(errors="replace")
                    print(f"--- hs{i + 1} (exit code {proc.poll()}):\n{log[-3000:]}", file=sys.stderr)
                raise
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        _drop(args.mysql, name)
    ordered = sorted(latencies) or [0.0]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return Result(instances, multi_writer, args.messages, seconds, statistics.median(ordered) * 1000, p99 * 1000)


def table(results: list[Result]) -> str:
    lines = ["| instances | event writers | send throughput (msg/s) | delivery p50 (ms) | delivery p99 (ms) |",
             "|---:|---|---:|---:|---:|"]
    for r in results:
        writers = "claimed positions (several)" if r.multi_writer else "one row lock"
        lines.append(f"| {r.instances} | {writers} | {r.throughput:.1f} | {r.p50_ms:.0f} | {r.p99_ms:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deployment", description=__doc__)
    parser.add_argument("--mysql", default="127.0.0.1:3306")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="empty: database wake-up queue")
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--rooms", type=int, default=4)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    results = []
    for instances in (1, 3):
        for multi_writer in (False, True):
            result = asyncio.run(run_one(instances, multi_writer, args))
            print(f"{instances} instance(s), multi_writer={multi_writer}: {result.throughput:.1f} msg/s, "
                  f"p50 {result.p50_ms:.0f} ms, p99 {result.p99_ms:.0f} ms", flush=True)
            results.append(result)
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())

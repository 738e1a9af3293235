"""``python -m bench.idempotency``: what an ``Idempotency-Key`` costs a POST, and what a replay costs.

One homeserver (Hypercorn on loopback, SQLite in a temporary folder, or the
database of ``--database-url``) and one user.  Sequential POSTs of two kinds:
``/user/{id}/filter`` (a small write) and ``/createRoom`` (a heavy one), each
sent without a key, with a fresh key per request (the row is claimed and the
answer stored), and again with the key of an earlier request (the stored
answer is replayed).  The modes alternate in rounds so that a noisy machine
affects them alike; the report gives requests per second and ratios to "no
key".
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from hypercorn.config import Config as HypercornConfig

from homeserver.app import create_app
from homeserver.config import load_config
from homeserver.serving import serve_bounded

V3 = "/_matrix/client/v3"
MODES = ("no key", "fresh key", "replay")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _round(client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str],
                 mode: str, count: int, replay_keys: list[str]) -> float:
    started = time.perf_counter()
    for i in range(count):
        extra = {}
        if mode == "fresh key":
            key = secrets.token_urlsafe(16)
            replay_keys.append(key)
            extra = {"Idempotency-Key": key}
        elif mode == "replay":
            extra = {"Idempotency-Key": replay_keys[i % len(replay_keys)]}
        answer = await client.post(path, json=body, headers={**headers, **extra})
        assert answer.status_code == 200, answer.text
    return time.perf_counter() - started


async def run(database_url: str | None, rounds: int, filters: int, rooms: int) -> dict[str, Any]:
    data = Path(tempfile.mkdtemp(prefix="parley-bench-idem-"))
    overrides: dict[str, Any] = {
        "server_name": "bench.localhost", "dev_mode": True, "data_dir": str(data),
        "registration": {"open": True, "require_email": False},
        "security": {"password_scrypt_log_n": 10}, "rate_limits": {"enabled": False},
    }
    if database_url:
        overrides["database"] = {"url": database_url}
    config = load_config(None, environ={}, overrides=overrides)
    port = _free_port()
    hc = HypercornConfig()
    hc.bind = [f"127.0.0.1:{port}"]
    hc.errorlog = hc.accesslog = None
    hc.keep_alive_max_requests = 1_000_000
    stop = asyncio.Event()
    serving = asyncio.create_task(serve_bounded(create_app(config), hc, stop.wait))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=60) as client:
        while True:
            try:
                await client.get("/_matrix/client/versions")
                break
            except httpx.TransportError:
                await asyncio.sleep(0.05)
        user = (await client.post(V3 + "/register", json={
            "username": f"bench{secrets.token_hex(3)}", "password": "correct horse 1",
            "auth": {"type": "m.login.dummy"}})).json()
        headers = {"Authorization": f"Bearer {user['access_token']}"}
        kinds: dict[str, tuple[str, dict[str, Any], int]] = {"filter": (f"{V3}/user/{user['user_id']}/filter", {"room": {"timeline": {"limit": 10}}},
                            filters),
                 "createRoom": (V3 + "/createRoom", {"preset": "private_chat"}, rooms)}
        seconds = {kind: dict.fromkeys(MODES, 0.0) for kind in kinds}
        for _ in range(rounds):
            for kind, (path, body, count) in kinds.items():
                keys: list[str] = []
                for mode in MODES:
                    seconds[kind][mode] += await _round(client, path, body, headers, mode, count, keys)
    stop.set()
    await serving
    report: dict[str, Any] = {"database": "mysql" if database_url else "sqlite", "rounds": rounds}
    for kind, (_, _, count) in kinds.items():
        rates = {mode: rounds * count / seconds[kind][mode] for mode in MODES}
        report[kind] = {
            "requests_per_mode": rounds * count,
            "per_second": {mode: round(rate, 1) for mode, rate in rates.items()},
            "ratio_to_no_key": {mode: round(rate / rates["no key"], 3) for mode, rate in rates.items()},
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", default=None, help="e.g. mysql://root@127.0.0.1:3306/bench")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--filters", type=int, default=60, help="filter POSTs per mode and round")
    parser.add_argument("--rooms", type=int, default=6, help="createRoom POSTs per mode and round")
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.database_url, args.rounds, args.filters, args.rooms)), indent=2))


if __name__ == "__main__":
    main()

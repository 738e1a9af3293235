"""Two homeserver instances sharing one database: a write on one wakes long-polls on the other.

The wake-up travels over Redis pub/sub when configured, and otherwise through
each instance polling the stream positions in the database.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from tests.support.redis import require_redis
from tests.support.server import serve_homeserver


def _redis_overrides(bus: str) -> dict[str, Any]:
    return {"redis_url": require_redis()} if bus == "redis" else {}


@pytest.mark.parametrize("bus", ["database-polling", "redis"])
async def test_write_on_one_instance_wakes_sync_on_the_other(make_config: Any, bus: str) -> None:
    first_config = make_config(**_redis_overrides(bus))
    # Same deployment: same server name, database, data folder (signing key, media).
    second_config = first_config.replace()
    async with serve_homeserver(first_config) as one, serve_homeserver(second_config) as two:
        alice = await one.register("alice")
        bob_on_two = await two.register("bob")
        room = (await one.api("POST", "createRoom", alice, json={"preset": "private_chat"})).json()["room_id"]
        assert (await one.api("POST", f"rooms/{room}/invite", alice, json={"user_id": bob_on_two.user_id})).status_code == 200
        assert (await two.api("POST", f"join/{room}", bob_on_two, json={})).status_code == 200

        since = (await one.api("GET", "sync", alice, params={"timeout": 0})).json()["next_batch"]
        started = time.monotonic()
        poll = asyncio.create_task(one.api("GET", "sync", alice, params={"since": since, "timeout": 30000},
                                           timeout=60))
        await asyncio.sleep(0.3)
        sent = await two.api("PUT", f"rooms/{room}/send/m.room.message/t1", bob_on_two,
                             json={"msgtype": "m.text", "body": "from the other instance"})
        assert sent.status_code == 200, sent.text
        body = (await poll).json()
        waited = time.monotonic() - started
        events = body["rooms"]["join"][room]["timeline"]["events"]
        assert [e["event_id"] for e in events] == [sent.json()["event_id"]]
        # Woken by the write, not by the 30 s timeout (reported, not a speed assertion).
        print(f"{bus}: long-poll on instance one answered {waited:.3f} s after it started")
        assert waited < 25

"""Reads do not turn into write herds: however many requests of one user (or
device) arrive at once, their presence heartbeat and the device's last-seen
are written once per interval by an instance."""

from __future__ import annotations

import asyncio
from typing import Any

from homeserver.services.auth import LAST_SEEN_GRANULARITY_MS
from homeserver.services.clock import ManualClock
from homeserver.services.presence import HEARTBEAT_MS
from tests.homeserver.room_helpers import sync
from tests.support.server import serve_homeserver


async def test_concurrent_syncs_write_one_heartbeat_and_one_last_seen(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        await sync(server, alice)  # online, seen now
        db = server.hs.database
        presence = server.hs.services.presence
        tokens = server.hs.services.tokens
        clock.advance(max(HEARTBEAT_MS, LAST_SEEN_GRANULARITY_MS))
        ours: set[int] = set()
        statements: list[int] = []

        def observe(elapsed: float) -> None:
            del elapsed
            if id(asyncio.current_task()) in ours:  # not background loops (wake-up bus, outbox)
                statements.append(1)

        async def at_once(make: Any) -> int:
            del statements[:]
            tasks = [asyncio.create_task(make()) for _ in range(10)]
            ours.update(id(t) for t in tasks)
            await asyncio.gather(*tasks)
            return len(statements)

        db.query_observers.append(observe)
        try:
            with db.activated():
                # Ten requests at once, each reading the same stale rows first.
                heartbeat = await at_once(lambda: presence.on_sync(alice.user_id, None))
                last_seen = await at_once(lambda: tokens.authenticate(alice.access_token, "127.0.0.1"))
        finally:
            db.query_observers.remove(observe)
        assert heartbeat == 10 + 1  # ten reads, one write
        assert last_seen == 10 + 1
        with db.activated():
            row = await db.fetch_one("SELECT last_seen_ts FROM presence WHERE user_id = ?", (alice.user_id,))
            device = await db.fetch_one("SELECT last_seen_ts FROM devices WHERE user_id = ? AND device_id = ?",
                                        (alice.user_id, alice.device_id))
        assert row is not None and int(row["last_seen_ts"]) == clock.now_ms()
        assert device is not None and int(device["last_seen_ts"]) == clock.now_ms()

"""Concurrent retries of one send: the transaction id is looked up once per send,
so twins that pass that lookup together meet at the table's unique key."""

from __future__ import annotations

import asyncio

from tests.homeserver.room_helpers import bodies, create_room, sync, timeline
from tests.support.server import RunningServer


async def test_concurrent_sends_of_one_transaction_store_one_event(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    path = f"rooms/{room}/send/m.room.message/raced-txn"
    responses = await asyncio.gather(*(
        server.api("PUT", path, alice, json={"msgtype": "m.text", "body": "only once"}) for _ in range(8)
    ))
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses]
    assert len({r.json()["event_id"] for r in responses}) == 1
    assert bodies(timeline(await sync(server, alice), room)) == ["only once"]
    # The room still takes new events (no stream position was left claimed by the losers).
    after = await server.api("PUT", f"rooms/{room}/send/m.room.message/next-txn", alice,
                             json={"msgtype": "m.text", "body": "next"})
    assert after.status_code == 200, after.text
    assert bodies(timeline(await sync(server, alice), room)) == ["only once", "next"]

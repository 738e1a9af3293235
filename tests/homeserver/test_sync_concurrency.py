"""Many writers, incremental readers: every reader sees every event exactly once, in order."""

from __future__ import annotations

import asyncio
import json
import time

import pytest

from homeserver.services.events import compute_event_id
from tests.homeserver.room_helpers import create_room, sync
from tests.support.server import RunningServer

WRITERS = 4
EVENTS_PER_WRITER = 500
READERS = 3


@pytest.mark.slow
async def test_concurrent_writers_and_incremental_readers(server: RunningServer) -> None:
    owner = await server.register()
    writers = [await server.register() for _ in range(WRITERS)]
    readers = [await server.register() for _ in range(READERS)]
    everyone = [w.user_id for w in writers] + [r.user_id for r in readers]
    # Two rooms, two writers in each: writes to one room race for its forward extremity.
    rooms = [await create_room(server, owner, preset="public_chat") for _ in range(2)]
    for room in rooms:
        for user in [*writers, *readers]:
            assert (await server.api("POST", f"rooms/{room}/join", user, json={})).status_code == 200
    assert len(everyone) == WRITERS + READERS
    flt = json.dumps({"room": {"timeline": {"limit": 500}}})
    starts = [(await sync(server, r, filter=flt))["next_batch"] for r in readers]
    sent: dict[int, list[str]] = {}
    done = asyncio.Event()

    async def write(index: int) -> None:
        user = writers[index]
        room = rooms[index % 2]
        ids = []
        for n in range(EVENTS_PER_WRITER):
            response = await server.api("PUT", f"rooms/{room}/send/m.room.message/c{index}-{n}", user,
                                        json={"msgtype": "m.text", "body": f"{index}:{n}"})
            assert response.status_code == 200, response.text
            ids.append(response.json()["event_id"])
        sent[index] = ids

    async def read(index: int) -> list[str]:
        since = starts[index]
        seen: list[str] = []
        while True:
            finished = done.is_set()
            body = await sync(server, readers[index], since=since, timeout=500, filter=flt)
            for room in rooms:
                section = body["rooms"]["join"].get(room)
                if section is None:
                    continue
                assert section["timeline"]["limited"] is False
                seen += [e["event_id"] for e in section["timeline"]["events"] if e["type"] == "m.room.message"]
            since = body["next_batch"]
            if finished:
                return seen

    started = time.monotonic()
    reader_tasks = [asyncio.create_task(read(i)) for i in range(READERS)]
    await asyncio.gather(*(write(i) for i in range(WRITERS)))
    done.set()
    results = await asyncio.gather(*reader_tasks)
    print(f"{WRITERS * EVENTS_PER_WRITER} events, {READERS} readers: {time.monotonic() - started:.1f} s")

    all_sent = {e for ids in sent.values() for e in ids}
    assert len(all_sent) == WRITERS * EVENTS_PER_WRITER
    for seen in results:
        assert len(seen) == len(set(seen)), "an event was delivered twice"
        assert set(seen) == all_sent, "an event was skipped"
        position = {event_id: i for i, event_id in enumerate(seen)}
        for ids in sent.values():
            assert [position[e] for e in ids] == sorted(position[e] for e in ids), "out of order"
    # The rooms' DAGs are chains: each event points at the one committed before it.
    for room in rooms:
        rows = await server.hs.database.fetch(
            "SELECT pdu, depth FROM events WHERE room_id = ? ORDER BY stream_pos", (room,))
        pdus = [json.loads(r["pdu"]) for r in rows]
        for before, after in zip(pdus, pdus[1:], strict=False):
            assert after["prev_events"] == [compute_event_id(before)]
            assert after["depth"] == before["depth"] + 1

"""Parsed /sync filters are remembered: a stored filter is read from the database
once, each user's ids stay their own, and an unknown id is never remembered."""

from __future__ import annotations

import json

from tests.homeserver.room_helpers import create_room, send_text, sync, timeline
from tests.support.server import RunningServer


async def test_stored_filters_are_read_once_and_stay_per_user(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice)
    for i in range(3):
        await send_text(server, alice, room, f"m{i}")
    made = await server.api("POST", f"user/{alice.user_id}/filter", alice,
                            json={"room": {"timeline": {"limit": 1}}})
    assert made.status_code == 200, made.text
    filter_id = made.json()["filter_id"]
    store = server.hs.services.sync.filter_store
    fetched: list[str] = []
    original = store.get

    async def counting_get(user_id: str, param: str) -> object:
        fetched.append(param)
        return await original(user_id, param)

    store.get = counting_get
    try:
        for _ in range(3):
            assert len(timeline(await sync(server, alice, filter=filter_id), room)) == 1
        assert fetched == [filter_id]
        # Bob has no filter of that id (even though Alice's is remembered).
        other = await server.api("GET", "sync", bob, params={"filter": filter_id, "timeline": 0})
        assert other.status_code == 404 and other.json()["errcode"] == "M_NOT_FOUND"
        # An unknown id answers 404 every time, and works once Bob uploads that filter.
        mine = await server.api("POST", f"user/{bob.user_id}/filter", bob,
                                json={"room": {"timeline": {"limit": 1}}})
        assert mine.json()["filter_id"] == filter_id  # the same JSON: the same id
        assert (await server.api("GET", "sync", bob, params={"filter": filter_id})).status_code == 200
        # Inline filters are parsed per parameter.
        inline = json.dumps({"room": {"timeline": {"limit": 2}}})
        assert len(timeline(await sync(server, alice, filter=inline), room)) == 2
    finally:
        store.get = original

"""Three servers in one room: a server that joins through a member other than the room's creator."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.homeserver.federation.test_joins import create_room
from tests.homeserver.federation.test_room_flow import say, timeline_until
from tests.support.federation import Cluster, cluster

H1, H2, H3 = "hs1.localhost", "hs2.localhost", "hs3.localhost"


@pytest.fixture
async def trio(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path, 3) as servers:
        yield servers


async def test_a_third_server_joins_through_the_second(trio: Cluster) -> None:
    hs1, hs2, hs3 = trio.running[H1], trio.running[H2], trio.running[H3]
    alice, bob, carol = await hs1.register("alice"), await hs2.register("bob"), await hs3.register("carol")
    room_id = await create_room(hs1, alice, name="Three")
    _, alice_since = await timeline_until(hs1, alice, room_id, set())
    assert (await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})).status_code == 200
    _, bob_since = await timeline_until(hs2, bob, room_id, set())
    joined = await hs3.api("POST", f"join/{room_id}", carol, params={"server_name": H2}, json={})
    assert joined.status_code == 200, joined.text
    _, carol_since = await timeline_until(hs3, carol, room_id, set())
    hello = await say(hs3, carol, room_id, "hello from hs3", "c1")
    for server, account, since in ((hs1, alice, alice_since), (hs2, bob, bob_since)):
        seen, _ = await timeline_until(server, account, room_id, {"hello from hs3"}, since)
        assert [e["event_id"] for e in seen if e["content"].get("body") == "hello from hs3"] == [hello]
    reply = await say(hs1, alice, room_id, "hello from hs1", "a1")
    seen, _ = await timeline_until(hs3, carol, room_id, {"hello from hs1"}, carol_since)
    assert [e["event_id"] for e in seen if e["content"].get("body") == "hello from hs1"] == [reply]

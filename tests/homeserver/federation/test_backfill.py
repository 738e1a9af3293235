"""History from before a server joined a room, backfilled on /messages (``GET /backfill`` from a
resident server), in order, page by page; a ``joined`` room's earlier history stays hidden."""

from __future__ import annotations

from tests.homeserver.federation.test_joins import create_room
from tests.homeserver.federation.test_room_flow import say
from tests.support.client_api import Syncer, history
from tests.support.federation import Cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


async def test_history_before_the_join_is_backfilled_page_by_page(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, name="History")
    sent = [f"earlier {i}" for i in range(25)]
    for i, text in enumerate(sent):
        await say(hs1, alice, room_id, text, f"e{i}")
    assert (await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})).status_code == 200
    bob_sync = Syncer(hs2, bob)
    await bob_sync.poll()
    await say(hs1, alice, room_id, "after the join", "after")
    await bob_sync.until_message(room_id, "after the join")
    assert await history(hs2, bob, room_id, page=10) == [*sent, "after the join"]
    # A second reader pages through what hs2 now holds, in other page sizes: the same history.
    assert await history(hs2, bob, room_id, page=4) == [*sent, "after the join"]
    # What /sync says is new is only what came after the join.
    assert "earlier 0" not in bob_sync.bodies(room_id)


async def test_a_joined_only_room_backfills_nothing_from_before_the_join(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, initial_state=[
        {"type": "m.room.history_visibility", "state_key": "", "content": {"history_visibility": "joined"}}])
    for i in range(5):
        await say(hs1, alice, room_id, f"private {i}", f"p{i}")
    assert (await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})).status_code == 200
    bob_sync = Syncer(hs2, bob)
    await bob_sync.poll()
    await say(hs1, alice, room_id, "after the join", "after")
    await bob_sync.until_message(room_id, "after the join")
    assert await history(hs2, bob, room_id) == ["after the join"]

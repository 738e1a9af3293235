"""History from before a join, backfilled across Parley and Synapse: the joining server's
``/messages`` going backwards reaches the messages sent before its user joined (``/backfill``)."""

from __future__ import annotations

from tests.support.client_api import Syncer, create_room, history, join, say
from tests.support.server import RunningServer
from tests.support.synapse import SynapseClient

EARLIER = 25


async def test_synapse_backfills_history_from_parley(parley: RunningServer, synapse: SynapseClient) -> None:
    pat, sam = await parley.register(), await synapse.register()
    room_id = await create_room(parley, pat, name="History")
    sent = [f"earlier {i}" for i in range(EARLIER)]
    for text in sent:
        await say(parley, pat, room_id, text)
    await join(synapse, sam, room_id, parley.config.server_name)
    sam_sync = Syncer(synapse, sam)
    await sam_sync.poll()
    await say(parley, pat, room_id, "after the join")
    await sam_sync.until_message(room_id, "after the join")
    assert await history(synapse, sam, room_id) == [*sent, "after the join"]


async def test_parley_backfills_history_from_synapse(parley: RunningServer, synapse: SynapseClient) -> None:
    sam, pat = await synapse.register(), await parley.register()
    room_id = await create_room(synapse, sam, name="History")
    sent = [f"earlier {i}" for i in range(EARLIER)]
    for text in sent:
        await say(synapse, sam, room_id, text)
    await join(parley, pat, room_id, synapse.server_name)
    pat_sync = Syncer(parley, pat)
    await pat_sync.poll()
    await say(synapse, sam, room_id, "after the join")
    await pat_sync.until_message(room_id, "after the join")
    assert await history(parley, pat, room_id) == [*sent, "after the join"]
    assert await history(parley, pat, room_id, page=7) == [*sent, "after the join"]  # now held here

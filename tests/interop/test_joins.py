"""Joining across Parley and Synapse: each server's users join rooms created on the other, and
messages flow both ways afterwards (make_join/send_join v2, /send transactions, /sync)."""

from __future__ import annotations

from tests.support.client_api import Syncer, create_room, join, joined_members, say, state_content
from tests.support.server import RunningServer
from tests.support.synapse import SynapseClient


async def test_a_parley_user_joins_a_room_created_on_synapse(parley: RunningServer,
                                                               synapse: SynapseClient) -> None:
    sam, pat = await synapse.register(), await parley.register()
    room_id = await create_room(synapse, sam, name="Made on Synapse")
    await join(parley, pat, room_id, synapse.server_name)
    assert await joined_members(parley, pat, room_id) == {sam.user_id, pat.user_id}
    assert (await state_content(parley, pat, room_id, "m.room.name"))["name"] == "Made on Synapse"
    sam_sync, pat_sync = Syncer(synapse, sam), Syncer(parley, pat)
    await sam_sync.until(f"{pat.user_id} joined", lambda s: any(
        e["type"] == "m.room.member" and e["state_key"] == pat.user_id for e in s.timeline.get(room_id, [])))
    await pat_sync.poll()
    sent = await say(synapse, sam, room_id, "hello from synapse")
    assert (await pat_sync.until_message(room_id, "hello from synapse"))["event_id"] == sent
    reply = await say(parley, pat, room_id, "hello from parley")
    assert (await sam_sync.until_message(room_id, "hello from parley"))["event_id"] == reply


async def test_a_synapse_user_joins_a_room_created_on_parley(parley: RunningServer,
                                                               synapse: SynapseClient) -> None:
    pat, sam = await parley.register(), await synapse.register()
    room_id = await create_room(parley, pat, name="Made on Parley")
    await join(synapse, sam, room_id, parley.config.server_name)
    assert await joined_members(synapse, sam, room_id) == {sam.user_id, pat.user_id}
    assert await joined_members(parley, pat, room_id) == {sam.user_id, pat.user_id}
    assert (await state_content(synapse, sam, room_id, "m.room.name"))["name"] == "Made on Parley"
    pat_sync, sam_sync = Syncer(parley, pat), Syncer(synapse, sam)
    await pat_sync.poll()
    await sam_sync.poll()
    sent = await say(parley, pat, room_id, "hello from parley")
    assert (await sam_sync.until_message(room_id, "hello from parley"))["event_id"] == sent
    reply = await say(synapse, sam, room_id, "hello from synapse")
    assert (await pat_sync.until_message(room_id, "hello from synapse"))["event_id"] == reply

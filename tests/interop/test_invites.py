"""Invites across Parley and Synapse (``PUT /v2/invite``), accepted by joining through the inviter's
server, in private rooms each side created; messages afterwards prove the invitee is in."""

from __future__ import annotations

from tests.support.client_api import Syncer, create_room, joined_members, ok, say
from tests.support.server import RunningServer
from tests.support.synapse import SynapseClient


async def test_a_synapse_user_invites_a_parley_user(parley: RunningServer, synapse: SynapseClient) -> None:
    sam, pat = await synapse.register(), await parley.register()
    room_id = await create_room(synapse, sam, preset="private_chat", name="Invite only")
    pat_sync = Syncer(parley, pat)
    await pat_sync.poll()
    ok(await synapse.api("POST", f"rooms/{room_id}/invite", sam, json={"user_id": pat.user_id}))
    await pat_sync.until("the invite", lambda s: room_id in s.invites)
    stripped = {e["type"]: e for e in pat_sync.invites[room_id]}
    assert stripped["m.room.name"]["content"]["name"] == "Invite only"
    assert stripped["m.room.member"]["sender"] == sam.user_id
    ok(await parley.api("POST", f"join/{room_id}", pat, json={}))  # through the inviter's server
    assert await joined_members(synapse, sam, room_id) == {sam.user_id, pat.user_id}
    sent = await say(synapse, sam, room_id, "welcome in")
    assert (await pat_sync.until_message(room_id, "welcome in"))["event_id"] == sent


async def test_a_parley_user_invites_a_synapse_user(parley: RunningServer, synapse: SynapseClient) -> None:
    pat, sam = await parley.register(), await synapse.register()
    room_id = await create_room(parley, pat, preset="private_chat", name="Parley only")
    sam_sync = Syncer(synapse, sam)
    await sam_sync.poll()
    ok(await parley.api("POST", f"rooms/{room_id}/invite", pat, json={"user_id": sam.user_id}))
    await sam_sync.until("the invite", lambda s: room_id in s.invites)
    stripped = {e["type"]: e for e in sam_sync.invites[room_id]}
    assert stripped["m.room.name"]["content"]["name"] == "Parley only"
    ok(await synapse.api("POST", f"join/{room_id}", sam, json={}))
    assert await joined_members(parley, pat, room_id) == {sam.user_id, pat.user_id}
    pat_sync = Syncer(parley, pat)
    await pat_sync.poll()
    reply = await say(synapse, sam, room_id, "thanks for the invite")
    assert (await pat_sync.until_message(room_id, "thanks for the invite"))["event_id"] == reply

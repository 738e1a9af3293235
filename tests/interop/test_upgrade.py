"""Room upgrades across Parley and Synapse: the server of the upgrading user sends the tombstone;
the other server's user sees it, joins the replacement room through the upgrader's server, finds its
``predecessor``, and messages flow in the new room."""

from __future__ import annotations

from tests.support.client_api import (
    ClientApi,
    Syncer,
    create_room,
    join,
    joined_members,
    ok,
    say,
    state_content,
)
from tests.support.server import Account, RunningServer
from tests.support.synapse import SynapseClient


async def _upgrade_followed(owner_server: ClientApi, owner: Account, owner_name: str, guest_server: ClientApi,
                            guest: Account, old_version: str, new_version: str) -> None:
    room_id = await create_room(owner_server, owner, name="Old room", room_version=old_version)
    await join(guest_server, guest, room_id, owner_name)
    guest_sync = Syncer(guest_server, guest)
    await guest_sync.poll()
    answer = ok(await owner_server.api("POST", f"rooms/{room_id}/upgrade", owner, json={"new_version": new_version}))
    new_room = str(answer["replacement_room"])
    await guest_sync.until("the tombstone", lambda s: any(
        e["type"] == "m.room.tombstone" for e in s.timeline.get(room_id, [])))
    tombstone = await state_content(guest_server, guest, room_id, "m.room.tombstone")
    assert tombstone["replacement_room"] == new_room
    await join(guest_server, guest, new_room, owner_name)
    create = await state_content(guest_server, guest, new_room, "m.room.create")
    assert create["predecessor"]["room_id"] == room_id
    assert create.get("room_version", "1") == new_version
    assert await joined_members(guest_server, guest, new_room) >= {owner.user_id, guest.user_id}
    assert await joined_members(owner_server, owner, new_room) >= {owner.user_id, guest.user_id}
    owner_sync = Syncer(owner_server, owner)
    await owner_sync.poll()
    reply = await say(guest_server, guest, new_room, "followed the upgrade")
    assert (await owner_sync.until_message(new_room, "followed the upgrade"))["event_id"] == reply


async def test_a_room_upgraded_on_synapse_is_followed_from_parley(parley: RunningServer,
                                                                  synapse: SynapseClient) -> None:
    sam, pat = await synapse.register(), await parley.register()
    await _upgrade_followed(synapse, sam, synapse.server_name, parley, pat, "10", "11")


async def test_a_room_upgraded_on_parley_is_followed_from_synapse(parley: RunningServer,
                                                                  synapse: SynapseClient) -> None:
    pat, sam = await parley.register(), await synapse.register()
    await _upgrade_followed(parley, pat, parley.config.server_name, synapse, sam, "11", "12")

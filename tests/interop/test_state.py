"""State changes across Parley and Synapse: name, topic and power levels set on one server are the
room's state on the other, including changes made possible by a power level the other server granted."""

from __future__ import annotations

from typing import Any

from tests.support.client_api import (
    ClientApi,
    Syncer,
    create_room,
    join,
    set_state,
    state_content,
)
from tests.support.server import Account, RunningServer
from tests.support.synapse import SynapseClient


async def _promote(server: ClientApi, owner: Account, room_id: str, user_id: str) -> tuple[dict[str, Any], str]:
    """The level renaming the room needs (Synapse's rooms: 50, Parley's: 100) for ``user_id``:
    the new power levels and their event id."""
    levels = await state_content(server, owner, room_id, "m.room.power_levels")
    needed = levels.get("events", {}).get("m.room.name", levels.get("state_default", 50))
    levels["users"] = {**levels.get("users", {}), user_id: needed}
    return levels, await set_state(server, owner, room_id, "m.room.power_levels", levels)


async def _shared_room(owner_server: ClientApi, owner: Account, guest_server: ClientApi, guest: Account,
                       via: str) -> str:
    room_id = await create_room(owner_server, owner, name="Before")
    await join(guest_server, guest, room_id, via)
    return room_id


async def test_state_set_on_synapse_is_state_on_parley_and_back(parley: RunningServer,
                                                                 synapse: SynapseClient) -> None:
    sam, pat = await synapse.register(), await parley.register()
    room_id = await _shared_room(synapse, sam, parley, pat, synapse.server_name)
    pat_sync, sam_sync = Syncer(parley, pat), Syncer(synapse, sam)
    await pat_sync.poll()
    await sam_sync.poll()
    topic = await set_state(synapse, sam, room_id, "m.room.topic", {"topic": "Set on Synapse"})
    assert (await pat_sync.until_event(room_id, topic))["content"] == {"topic": "Set on Synapse"}
    assert await state_content(parley, pat, room_id, "m.room.topic") == {"topic": "Set on Synapse"}
    levels, promoted = await _promote(synapse, sam, room_id, pat.user_id)
    await pat_sync.until_event(room_id, promoted)
    assert (await state_content(parley, pat, room_id, "m.room.power_levels"))["users"] == levels["users"]
    # The level Synapse granted lets the Parley user rename the room; Synapse accepts it.
    renamed = await set_state(parley, pat, room_id, "m.room.name", {"name": "Renamed on Parley"})
    assert (await sam_sync.until_event(room_id, renamed))["content"] == {"name": "Renamed on Parley"}
    assert await state_content(synapse, sam, room_id, "m.room.name") == {"name": "Renamed on Parley"}


async def test_state_set_on_parley_is_state_on_synapse_and_back(parley: RunningServer,
                                                                 synapse: SynapseClient) -> None:
    pat, sam = await parley.register(), await synapse.register()
    room_id = await _shared_room(parley, pat, synapse, sam, parley.config.server_name)
    pat_sync, sam_sync = Syncer(parley, pat), Syncer(synapse, sam)
    await pat_sync.poll()
    await sam_sync.poll()
    topic = await set_state(parley, pat, room_id, "m.room.topic", {"topic": "Set on Parley"})
    assert (await sam_sync.until_event(room_id, topic))["content"] == {"topic": "Set on Parley"}
    assert await state_content(synapse, sam, room_id, "m.room.topic") == {"topic": "Set on Parley"}
    levels, promoted = await _promote(parley, pat, room_id, sam.user_id)
    await sam_sync.until_event(room_id, promoted)
    assert (await state_content(synapse, sam, room_id, "m.room.power_levels"))["users"] == levels["users"]
    renamed = await set_state(synapse, sam, room_id, "m.room.name", {"name": "Renamed on Synapse"})
    assert (await pat_sync.until_event(room_id, renamed))["content"] == {"name": "Renamed on Synapse"}
    assert await state_content(parley, pat, room_id, "m.room.name") == {"name": "Renamed on Synapse"}

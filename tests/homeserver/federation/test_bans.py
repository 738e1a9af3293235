"""Kicks and bans across three servers: a ban on hs1 of hs2's user holds on all three, and hs2 can no longer
put that user's events into the room (the other servers refuse them, whatever place in the graph they claim)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.homeserver.federation.test_joins import create_room
from tests.support.federation import Cluster, cluster
from tests.support.pdus import craft_pdu, send_pdus
from tests.support.room_sync import Syncer, joined, room_events
from tests.support.server import Account, RunningServer

H1, H2, H3 = "hs1.localhost", "hs2.localhost", "hs3.localhost"


@pytest.fixture
async def three(tmp_path: Path) -> AsyncIterator[Cluster]:
    async with cluster(tmp_path, 3) as servers:
        yield servers


async def _membership(server: RunningServer, room_id: str, user_id: str) -> str | None:
    with server.hs.database.activated():
        event = await server.hs.services.rooms.events.state_event(room_id, "m.room.member", user_id)
    return event.membership if event is not None else None


async def _until_membership(server: RunningServer, account: Account, room_id: str, user_id: str,
                            membership: str) -> None:
    async def holds() -> bool:
        return await _membership(server, room_id, user_id) == membership

    await Syncer(server, account).check_until(holds)


async def test_kick_and_ban_across_three_servers(three: Cluster) -> None:
    hs1, hs2, hs3 = three.running[H1], three.running[H2], three.running[H3]
    alice, bob, carol = await hs1.register("alice"), await hs2.register("bob"), await hs3.register("carol")
    room_id = await create_room(hs1, alice, room_version="11")
    for server, account in ((hs2, bob), (hs3, carol)):
        response = await server.api("POST", f"join/{room_id}", account, params={"server_name": H1}, json={})
        assert response.status_code == 200, response.text
    everyone = {alice.user_id, bob.user_id, carol.user_id}
    for server, account in ((hs1, alice), (hs2, bob), (hs3, carol)):
        await Syncer(server, account).check_until(
            lambda s=server, a=account: _joined_is(s, a, room_id, everyone))  # type: ignore[misc]
    with hs2.hs.database.activated():
        bob_join = (await hs2.hs.services.rooms.events.state_event(room_id, "m.room.member", bob.user_id))
    assert bob_join is not None
    with hs3.hs.database.activated():
        before_ban = [e for e, _ in await hs3.hs.services.rooms.events.graph.extremities(room_id)]

    # A kick by hs1 of hs3's user: carol's own server shows her out of the room.
    carol_sync = await Syncer(hs3, carol).start()
    kicked = await hs1.api("POST", f"rooms/{room_id}/kick", alice, json={"user_id": carol.user_id})
    assert kicked.status_code == 200, kicked.text
    seen = await carol_sync.until(lambda b: any(e["type"] == "m.room.member" and e["state_key"] == carol.user_id
                                                for e in room_events(b, room_id, kinds=("leave",))))
    assert seen
    await _until_membership(hs2, bob, room_id, carol.user_id, "leave")
    refused = await hs3.api("PUT", f"rooms/{room_id}/send/m.room.message/c1", carol, json={"body": "x"})
    assert refused.status_code == 403 and refused.json()["errcode"] == "M_FORBIDDEN"
    back = await hs3.api("POST", f"join/{room_id}", carol, params={"server_name": H1}, json={})
    assert back.status_code == 200, back.text  # a kick is not a ban

    # A ban by hs1 of hs2's user: on all three.
    banned = await hs1.api("POST", f"rooms/{room_id}/ban", alice, json={"user_id": bob.user_id, "reason": "spam"})
    assert banned.status_code == 200, banned.text
    for server, account in ((hs2, bob), (hs3, carol)):
        await _until_membership(server, account, room_id, bob.user_id, "ban")
    assert await _membership(hs1, room_id, bob.user_id) == "ban"
    said = await hs2.api("PUT", f"rooms/{room_id}/send/m.room.message/b1", bob, json={"body": "still here"})
    assert said.status_code == 403 and said.json()["errcode"] == "M_FORBIDDEN"
    rejoin = await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})
    assert rejoin.status_code == 403 and rejoin.json()["errcode"] == "M_FORBIDDEN"

    # hs2 ignoring the ban: bob's event after it is rejected by hs1 and hs3; one that claims a place
    # before the ban (its prev and auth events from then) is soft-failed; neither is shown.
    after_ids = {}
    for resident, name in ((hs1, H1), (hs3, H3)):
        after_id, after = await craft_pdu(hs2, resident, room_id, bob.user_id, "m.room.message",
                                          {"msgtype": "m.text", "body": "after the ban"})
        answer = await send_pdus(hs2, name, [after])
        assert answer[after_id]["error"].startswith("rejected"), answer
        after_ids[name] = after_id
    with hs3.hs.database.activated():
        state = {(e.type, e.state_key or ""): e.event_id
                 for e in await hs3.hs.services.rooms.room_state_events(room_id)}
    old_auth = [state[("m.room.create", "")], state[("m.room.power_levels", "")], bob_join.event_id]
    sneaked_id, sneaked = await craft_pdu(hs2, hs3, room_id, bob.user_id, "m.room.message",
                                          {"msgtype": "m.text", "body": "from before"}, prev_events=before_ban,
                                          auth_events=old_auth)
    answer = await send_pdus(hs2, H3, [sneaked])
    assert answer[sneaked_id] == {}, answer  # accepted into the graph, soft-failed: not in the room
    for server, account in ((hs1, alice), (hs3, carol)):
        response = await server.api("GET", f"rooms/{room_id}/event/{after_ids[server.hs.config.server_name]}",
                                    account)
        assert response.status_code == 404, response.text
    assert (await hs3.api("GET", f"rooms/{room_id}/event/{sneaked_id}", carol)).status_code == 404
    assert await _membership(hs3, room_id, bob.user_id) == "ban"


async def _joined_is(server: RunningServer, account: Account, room_id: str, users: set[str]) -> bool:
    return await joined(server, account, room_id) == users

"""Three Parley homeservers as real processes (``python -m homeserver``), federating over TLS from a test CA.

Users of all three share one room: messages, receipts, typing, presence and display names reach every
server; a stopped server's messages wait in the others' queues and reach it when it is back; a kick on one
server and a conflicting power-level change on another, made while the two cannot reach each other,
end in the same state on all three, the state that state resolution v2 gives for the two branches.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from homeserver.services.events import reference_ids
from homeserver.services.room_versions import ROOM_VERSIONS
from homeserver.services.state_res import resolve
from homeserver.storage.database import Database
from homeserver.storage.graph import GraphRepository
from tests.support.federation_procs import ProcessCluster, ProcessServer, process_cluster
from tests.support.room_sync import Syncer, bodies_of, joined, put_state, room_events, room_state, say
from tests.support.server import Account

H1, H2, H3 = "hs1.localhost", "hs2.localhost", "hs3.localhost"
JsonDict = dict[str, Any]


@pytest.fixture
async def trio(tmp_path: Path) -> AsyncIterator[ProcessCluster]:
    async with process_cluster(tmp_path, 3) as servers:
        yield servers


@dataclass
class Member:
    server: ProcessServer
    account: Account
    sync: Syncer

    @property
    def user_id(self) -> str:
        return self.account.user_id


async def _member(server: ProcessServer, name: str) -> Member:
    account = await server.register(name)
    return Member(server, account, Syncer(server, account))


async def three_in_a_room(trio: ProcessCluster, *names: tuple[str, str], room_version: str = "11"
                          ) -> tuple[str, list[Member]]:
    """A public room made on hs1 by its first user; the others join through hs1 or, for hs3's users,
    through hs2 (so hs2 passes their joins on); every server sees everyone joined before it returns."""
    members = [await _member(trio.running[server], name) for server, name in names]
    owner = members[0]
    created = await owner.server.api("POST", "createRoom", owner.account,
                                     json={"preset": "public_chat", "name": "Three", "room_version": room_version})
    assert created.status_code == 200, created.text
    room_id = str(created.json()["room_id"])
    for member in members[1:]:
        via = H2 if member.server.name == H3 else H1
        response = await member.server.api("POST", f"join/{room_id}", member.account,
                                           params={"server_name": via}, json={})
        assert response.status_code == 200, response.text
    everyone = {m.user_id for m in members}
    for member in members:
        await member.sync.check_until(
            lambda m=member: _joined_is(m, room_id, everyone))  # type: ignore[misc]
    return room_id, members


async def _joined_is(member: Member, room_id: str, users: set[str]) -> bool:
    return await joined(member.server, member.account, room_id) == users


async def test_a_group_of_three_servers(trio: ProcessCluster) -> None:
    room_id, members = await three_in_a_room(trio, (H1, "alice"), (H2, "bob"), (H3, "carol"))
    alice, bob, carol = members
    # Messages: each server's user says something, every user reads all three, in one order everywhere.
    sent = [await say(m.server, m.account, room_id, f"hello from {m.server.name}") for m in members]
    orders = []
    for member in members:
        seen = await member.sync.until(lambda b: len(bodies_of(b, room_id)) >= 3)
        events = [e for e in room_events(seen, room_id) if e["type"] == "m.room.message"]
        assert sorted(e["event_id"] for e in events) == sorted(sent)
        orders.append([e["event_id"] for e in events])
    assert {m.server.name for m in members} == {H1, H2, H3}

    # Typing on hs1 reaches hs2 and hs3.
    typing = await alice.server.api("PUT", f"rooms/{room_id}/typing/{alice.user_id}", alice.account,
                                    json={"typing": True, "timeout": 30000})
    assert typing.status_code == 200, typing.text
    for member in (bob, carol):
        await member.sync.until(lambda b: any(alice.user_id in e["content"].get("user_ids", [])
                                              for e in room_events(b, room_id, "ephemeral")
                                              if e["type"] == "m.typing"))

    # A read receipt on hs3 reaches hs1 and hs2.
    receipt = await carol.server.api("POST", f"rooms/{room_id}/receipt/m.read/{sent[0]}", carol.account, json={})
    assert receipt.status_code == 200, receipt.text
    for member in (alice, bob):
        await member.sync.until(lambda b: any(
            carol.user_id in e["content"].get(sent[0], {}).get("m.read", {})
            for e in room_events(b, room_id, "ephemeral") if e["type"] == "m.receipt"))

    # Presence set on hs2 reaches hs1 and hs3.
    presence = await bob.server.api("PUT", f"presence/{bob.user_id}/status", bob.account,
                                    json={"presence": "online", "status_msg": "on hs2"})
    assert presence.status_code == 200, presence.text
    for member in (alice, carol):
        await member.sync.until(lambda b: any(
            e["sender"] == bob.user_id and e["content"].get("status_msg") == "on hs2"
            for body in b for e in body.get("presence", {}).get("events", [])))

    # A display name set on hs3 is in the room's state on hs1 and hs2.
    renamed = await carol.server.api("PUT", f"profile/{carol.user_id}/displayname", carol.account,
                                     json={"displayname": "Carol of hs3"})
    assert renamed.status_code == 200, renamed.text
    for member in (alice, bob):
        await member.sync.check_until(lambda m=member: _display_name_is(m, room_id, carol.user_id,  # type: ignore[misc]
                                                                        "Carol of hs3"))


async def _display_name_is(member: Member, room_id: str, user_id: str, name: str) -> bool:
    response = await member.server.api("GET", f"rooms/{room_id}/state/m.room.member/{user_id}", member.account)
    return response.status_code == 200 and response.json().get("displayname") == name


async def test_a_stopped_server_catches_up_when_it_returns(trio: ProcessCluster) -> None:
    room_id, members = await three_in_a_room(trio, (H1, "alice"), (H2, "bob"), (H3, "carol"))
    alice, bob, carol = members
    await trio.stop(H3)
    words = [await say(alice.server, alice.account, room_id, "while hs3 was away, from hs1"),
             await say(bob.server, bob.account, room_id, "while hs3 was away, from hs2")]
    # Both wait in their server's queue for hs3 (read from the servers' own databases).
    for server in (alice.server, bob.server):
        await _until_queued(server, H3)
    carol.server = await trio.start(H3)
    carol.sync = Syncer(carol.server, carol.account)
    await carol.sync.check_until(lambda: _has_events(carol, room_id, words))
    messages = await carol.server.api("GET", f"rooms/{room_id}/messages", carol.account,
                                      params={"dir": "b", "limit": "10"})
    bodies = [e["content"].get("body") for e in messages.json()["chunk"] if e["type"] == "m.room.message"]
    assert set(bodies) >= {"while hs3 was away, from hs1", "while hs3 was away, from hs2"}
    # And carol's answer reaches the others: hs3 is a full member again.
    answer = await say(carol.server, carol.account, room_id, "back on hs3")
    for member in (alice, bob):
        await member.sync.check_until(lambda m=member: _has_events(m, room_id, [answer]))  # type: ignore[misc]


async def _until_queued(server: ProcessServer, destination: str) -> None:
    """The server's outbox holds items for ``destination`` (they are written before the send returns)."""
    database = Database(server.database_url)
    await database.connect()
    try:
        with database.activated():
            rows = await database.fetch("SELECT COUNT(*) AS n FROM federation_outbox WHERE destination = ?",
                                        (destination,))
        assert int(rows[0]["n"]) >= 1
    finally:
        await database.close()


async def _has_events(member: Member, room_id: str, event_ids: list[str]) -> bool:
    for event_id in event_ids:
        response = await member.server.api("GET", f"rooms/{room_id}/event/{event_id}", member.account)
        if response.status_code != 200:
            return False
    return True


async def test_concurrent_conflicting_state_converges(trio: ProcessCluster) -> None:
    room_id, members = await three_in_a_room(trio, (H1, "alice"), (H2, "bob"), (H3, "carol"), (H3, "dave"))
    alice, bob, carol, dave = members
    levels = (await room_state(alice.server, alice.account, room_id))[("m.room.power_levels", "")]["content"]
    users = dict(levels.get("users", {}), **{bob.user_id: 100, dave.user_id: 100})
    promoted = await put_state(alice.server, alice.account, room_id, "m.room.power_levels",
                               dict(levels, users=users))
    for member in (bob, dave):
        await member.sync.check_until(lambda m=member: _has_events(m, room_id, [promoted]))  # type: ignore[misc]

    # hs2 and hs3 cannot reach each other: bob kicks carol while dave makes carol as powerful as bob
    # (so bob may no longer kick her) and renames the room; neither has seen the other's change.
    await trio.cut(H2, H3)
    kick = await bob.server.api("POST", f"rooms/{room_id}/kick", bob.account,
                                json={"user_id": carol.user_id, "reason": "concurrent"})
    assert kick.status_code == 200, kick.text
    kick_id = await _member_event_id(bob, room_id, carol.user_id)
    raised = await put_state(dave.server, dave.account, room_id, "m.room.power_levels",
                             dict(levels, users=dict(users, **{carol.user_id: 100})))
    named = await put_state(dave.server, dave.account, room_id, "m.room.name", {"name": "Concurrent"})
    await alice.sync.check_until(lambda: _graph_has(alice.server, [kick_id, raised, named]))
    await trio.mend(H2, H3)

    # hs2 hears of dave's changes; bob's next message has both branches as prev events.
    await bob.sync.check_until(lambda: _has_events(bob, room_id, [named]))
    merge = await say(bob.server, bob.account, room_id, "after the split")
    for member in (alice, dave):
        await member.sync.check_until(lambda m=member: _has_events(m, room_id, [merge]))  # type: ignore[misc]

    states = [await room_state(m.server, m.account, room_id) for m in (alice, bob, dave)]
    ids = [{key: event["event_id"] for key, event in state.items()} for state in states]
    assert ids[0] == ids[1] == ids[2]
    expected = await _resolved(alice.server, room_id, [kick_id, named])
    assert ids[0] == expected
    assert states[0][("m.room.name", "")]["content"] == {"name": "Concurrent"}
    assert states[0][("m.room.power_levels", "")]["event_id"] == raised


async def _member_event_id(member: Member, room_id: str, user_id: str) -> str:
    state = await room_state(member.server, member.account, room_id)
    return str(state[("m.room.member", user_id)]["event_id"])


async def _graph_has(server: ProcessServer, event_ids: list[str]) -> bool:
    """The server has received these events (in its timeline or not: one may be soft-failed there)."""
    database = Database(server.database_url)
    await database.connect()
    try:
        with database.activated():
            found = await GraphRepository(database).get_graph_events(event_ids)
        return set(found) == set(event_ids)
    finally:
        await database.close()


async def _resolved(server: ProcessServer, room_id: str, branch_ends: list[str]) -> dict[tuple[str, str], str]:
    """State resolution v2 of the states after ``branch_ends``, from the events as ``server`` stored them."""
    database = Database(server.database_url)
    await database.connect()
    try:
        with database.activated():
            graph = GraphRepository(database)
            ends = await graph.get_graph_events(branch_ends)
            states = [await graph.state_ids(ends[e].state_group) for e in branch_ends]
            loaded: dict[str, JsonDict] = {}
            rejected: set[str] = set()
            frontier = {e for s in states for e in s.values()}
            while frontier:
                found = await graph.get_graph_events(frontier)
                frontier = set()
                for event_id, event in found.items():
                    loaded[event_id] = event.pdu
                    if event.status == "rejected":
                        rejected.add(event_id)
                    frontier |= {a for a in reference_ids(event.pdu.get("auth_events")) if a not in loaded}
                frontier -= set(loaded)
            version = ROOM_VERSIONS["11"]
            return resolve(version, states, loaded, rejected)
    finally:
        await database.close()

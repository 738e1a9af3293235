"""The incoming-event path: events from another (fake-signed) server, checked and stored
into the graph out of order; forks resolve to the same state in any delivery order."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from common.errors import MatrixError
from homeserver.services.incoming import (
    MAX_KEY_VALIDITY_MS,
    IncomingEvents,
    MissingEvents,
    VerifyKey,
    effective_valid_until,
)
from homeserver.services.room_versions import ROOM_VERSIONS
from tests.homeserver.graph_helpers import RemoteRoom
from tests.support.server import RunningServer


def incoming(server: RunningServer, room: RemoteRoom) -> IncomingEvents:
    services = server.hs.services
    return IncomingEvents(services.rooms.events, services.notifier, services.clock, room.key_lookup)


def forked_room(version: str) -> RemoteRoom:
    """A room with three concurrent branches (power levels, join rules, membership, names), merged by END."""
    room = RemoteRoom(version)
    a, b, c, d = (room.user(n) for n in "abcd")
    creator = {} if version in ("11", "12") else {"creator": a}
    room.add("CREATE", a, "m.room.create", {"room_version": version, **creator}, "")
    room.add("JA", a, "m.room.member", {"membership": "join"}, a)
    users = {b: 50} if version == "12" else {a: 100, b: 50}
    room.add("PL", a, "m.room.power_levels", {"users": users, "state_default": 50}, "")
    room.add("JR", a, "m.room.join_rules", {"join_rule": "public"}, "")
    room.add("JB", b, "m.room.member", {"membership": "join"}, b)
    room.add("JC", c, "m.room.member", {"membership": "join"}, c)
    # Branch 1: a demotes b, then renames.
    room.add("PL2", a, "m.room.power_levels", {"users": {**users, b: 0}, "state_default": 50}, "", prev=["JC"])
    room.add("N1", a, "m.room.name", {"name": "by a"}, "")
    # Branch 2: b (still 50 there) renames, and kicks c.
    room.add("N2", b, "m.room.name", {"name": "by b"}, "", prev=["JC"])
    room.add("KC", b, "m.room.member", {"membership": "leave"}, c)
    # Branch 3: a makes the room invite-only; d's join on top of it is rejected.
    room.add("JR2", a, "m.room.join_rules", {"join_rule": "invite"}, "", prev=["JC"])
    room.add("JD", d, "m.room.member", {"membership": "join"}, d)
    room.add("END", a, "m.room.message", {"body": "merged"}, prev=["N1", "KC", "JD"])
    return room


def delivery_order(room: RemoteRoom, rnd: random.Random) -> list[str]:
    """A random order in which every event comes after its prev events."""
    pending = {e: len(p) for e, p in room.prevs.items()}
    ready = [e for e, n in pending.items() if n == 0]
    out: list[str] = []
    while ready:
        event_id = ready.pop(rnd.randrange(len(ready)))
        out.append(event_id)
        for other, prevs in room.prevs.items():
            if event_id in prevs:
                pending[other] -= 1
                if pending[other] == 0:
                    ready.append(other)
    return out


async def current_state(server: RunningServer, room_id: str) -> dict[tuple[str, str], str]:
    events = server.hs.services.rooms.events
    head = await events.room_head(room_id)
    assert head is not None
    return await events.graph.state_ids(head.state_group)


@pytest.mark.parametrize("version", ["1", "2", "10", "11", "12"])
async def test_linear_remote_room_is_accepted(server: RunningServer, version: str) -> None:
    room = forked_room(version)
    inbox = incoming(server, room)
    with server.hs.database.activated():
        statuses = {}
        for event_id in delivery_order(room, random.Random(1)):
            statuses[event_id] = (await inbox.receive(version, room.events[event_id])).status
        state = await current_state(server, room.room_id)
    names = {v: k for k, v in room.names.items()}
    # d joined an invite-only room on its branch: rejected there, whatever the order.
    assert statuses[room.names["JD"]] == "rejected"
    assert all(s in ("accepted", "soft_failed") for e, s in statuses.items() if names[e] != "JD")
    assert state[("m.room.join_rules", "")] == room.names["JR2"]
    assert ("m.room.member", room.user("d")) not in state


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32), version=st.sampled_from(["1", "2", "10", "11", "12"]))
async def test_any_delivery_order_resolves_to_the_same_state(server: RunningServer, seed: int,
                                                             version: str) -> None:
    room = forked_room(version)
    inbox = incoming(server, room)
    end = room.names["END"]
    with server.hs.database.activated():
        for event_id in delivery_order(room, random.Random(seed)):
            await inbox.receive(version, room.events[event_id])
        state = await current_state(server, room.room_id)
        extremities = {e for e, _ in await server.hs.services.rooms.events.graph.extremities(room.room_id)}
    # END has seen every branch (through soft-failed and rejected events too): it is the only
    # forward extremity, and the current state is the resolution at END computed from the graph alone.
    assert extremities == {end}
    assert state == room.state_after[end]
    # Power: a's demotion of b and b's concurrent kick/rename are ordered the same way every time.
    assert state[("m.room.power_levels", "")] == room.names["PL2"]
    assert state[("m.room.name", "")] == room.names["N1"]


async def test_missing_prev_events_are_named(server: RunningServer) -> None:
    room = forked_room("11")
    inbox = incoming(server, room)
    with server.hs.database.activated():
        await inbox.receive("11", room.events[room.names["CREATE"]])
        with pytest.raises(MissingEvents) as caught:
            await inbox.receive("11", room.events[room.names["PL"]])
    assert caught.value.event_ids == [room.names["JA"]]


async def test_bad_signature_and_soft_fail(server: RunningServer) -> None:
    room = RemoteRoom("11")
    a, b = room.user("a"), room.user("b")
    room.add("CREATE", a, "m.room.create", {"room_version": "11"}, "")
    room.add("JA", a, "m.room.member", {"membership": "join"}, a)
    room.add("PL", a, "m.room.power_levels", {"users": {a: 100}}, "")
    room.add("JR", a, "m.room.join_rules", {"join_rule": "public"}, "")
    room.add("JB", b, "m.room.member", {"membership": "join"}, b)
    room.add("BAN", a, "m.room.member", {"membership": "ban"}, b)
    # b speaks on a branch that does not know of the ban yet.
    room.add("MSG", b, "m.room.message", {"body": "late"}, prev=["JB"])
    inbox = incoming(server, room)
    with server.hs.database.activated():
        for name in ("CREATE", "JA", "PL", "JR", "JB", "BAN"):
            assert (await inbox.receive("11", room.events[room.names[name]])).status == "accepted"
        forged: dict[str, Any] = dict(room.events[room.names["MSG"]])
        forged["signatures"] = {"remote.test": {"ed25519:k1": "A" * 86}}
        with pytest.raises(MatrixError) as caught:
            await inbox.receive("11", forged)
        assert caught.value.status == 403
        result = await inbox.receive("11", room.events[room.names["MSG"]])
        assert result.status == "soft_failed"
        timeline = await server.hs.services.rooms.events.get(room.names["MSG"])
        assert timeline is None  # kept in the graph, never shown to clients
        extremities = await server.hs.services.rooms.events.graph.extremities(room.room_id)
    assert [e for e, _ in extremities] == [room.names["BAN"]]


async def test_concurrent_state_resolves_as_soon_as_the_fork_arrives(server: RunningServer) -> None:
    room = RemoteRoom("11")
    a = room.user("a")
    room.add("CREATE", a, "m.room.create", {"room_version": "11"}, "")
    room.add("JA", a, "m.room.member", {"membership": "join"}, a)
    room.add("PL", a, "m.room.power_levels", {"users": {a: 100}}, "")
    room.add("N1", a, "m.room.name", {"name": "first"}, "")
    room.add("N2", a, "m.room.name", {"name": "second"}, "", prev=["PL"])  # later timestamp, other branch
    inbox = incoming(server, room)
    events = server.hs.services.rooms.events
    with server.hs.database.activated():
        for name in ("CREATE", "JA", "PL", "N1", "N2"):
            assert (await inbox.receive("11", room.events[room.names[name]])).status == "accepted"
        # Two forward extremities; the resolved name (same power: the later one) is current at once.
        assert {e for e, _ in await events.graph.extremities(room.room_id)} == {room.names["N1"], room.names["N2"]}
        assert (await current_state(server, room.room_id))[("m.room.name", "")] == room.names["N2"]
        shown = await events.state_event(room.room_id, "m.room.name", "")
    assert shown is not None and shown.event_id == room.names["N2"]


@pytest.mark.parametrize("version", ["4", "5", "11"])
async def test_signing_key_must_be_valid_at_the_event_from_v5(server: RunningServer, version: str) -> None:
    room = RemoteRoom(version)
    a = room.user("a")
    creator = {} if ROOM_VERSIONS[version].creator_is_sender else {"creator": a}
    create = room.add("CREATE", a, "m.room.create", {"room_version": version, **creator}, "")
    ts = int(room.events[create]["origin_server_ts"])

    def lookup_valid_until(valid_until: int) -> Any:
        async def lookup(server_name: str, key_id: str) -> VerifyKey | None:
            public = await room.key_lookup(server_name, key_id)
            return None if public is None else VerifyKey(public, valid_until)
        return lookup

    services = server.hs.services
    expired = IncomingEvents(services.rooms.events, services.notifier, services.clock, lookup_valid_until(ts - 1))
    valid = IncomingEvents(services.rooms.events, services.notifier, services.clock, lookup_valid_until(ts))
    with server.hs.database.activated():
        if ROOM_VERSIONS[version].key_validity:
            with pytest.raises(MatrixError) as caught:
                await expired.receive(version, room.events[create])
            assert caught.value.status == 403 and caught.value.errcode == "M_FORBIDDEN"
            assert (await valid.receive(version, room.events[create])).status == "accepted"
        else:
            # Before v5 a key's validity is not checked against the event.
            assert (await expired.receive(version, room.events[create])).status == "accepted"


def test_key_validity_is_capped_at_seven_days_after_the_fetch() -> None:
    fetched = 1_000_000
    assert effective_valid_until(fetched + 60_000, fetched) == fetched + 60_000
    assert effective_valid_until(fetched + 10 * MAX_KEY_VALIDITY_MS, fetched) == fetched + MAX_KEY_VALIDITY_MS

"""Incoming PDUs of a transaction (the ``PduHandler``): checked in the spec's order, missing
prev/auth events fetched from the origin, gaps crossed with the origin's state; and the
graph reads served to other servers.  Real signed events (ed25519), a real database."""

from __future__ import annotations

import copy

import pytest

from common.errors import MatrixError
from homeserver.services.federation_events import FederationEvents
from homeserver.services.federation_reads import FederationReads
from homeserver.services.incoming import IncomingEvents
from homeserver.services.server_acl import server_allowed
from tests.homeserver.federation_helpers import RoomAnswers
from tests.homeserver.graph_helpers import REMOTE, RemoteRoom
from tests.support.server import RunningServer


def pipeline(server: RunningServer, room: RemoteRoom, answers: RoomAnswers | None = None
             ) -> tuple[IncomingEvents, FederationEvents, FederationReads]:
    services = server.hs.services
    incoming = IncomingEvents(services.rooms.events, services.notifier, services.clock, room.key_lookup)
    return incoming, FederationEvents(incoming, answers), FederationReads(incoming, server.config.server_name)


def chat_room(version: str = "11", messages: int = 6) -> RemoteRoom:
    room = RemoteRoom(version)
    a, b = room.user("a"), room.user("b")
    creator = {} if version in ("11", "12") else {"creator": a}
    room.add("CREATE", a, "m.room.create", {"room_version": version, **creator}, "")
    room.add("JA", a, "m.room.member", {"membership": "join"}, a)
    room.add("PL", a, "m.room.power_levels", {"users": {a: 100} if version != "12" else {}}, "")
    room.add("JR", a, "m.room.join_rules", {"join_rule": "public"}, "")
    room.add("HV", a, "m.room.history_visibility", {"history_visibility": "shared"}, "")
    room.add("JB", b, "m.room.member", {"membership": "join"}, b)
    for n in range(messages):
        room.add(f"M{n}", a if n % 2 else b, "m.room.message", {"msgtype": "m.text", "body": f"m{n}"})
    room.add("NAME", a, "m.room.name", {"name": "late name"}, "")
    room.add("LAST", b, "m.room.message", {"msgtype": "m.text", "body": "last"})
    return room


async def state_now(server: RunningServer, room_id: str) -> dict[tuple[str, str], str]:
    events = server.hs.services.rooms.events
    head = await events.room_head(room_id)
    assert head is not None
    return await events.graph.state_ids(head.state_group)


@pytest.mark.parametrize("version", ["1", "3", "11", "12"])
async def test_a_transaction_of_pdus_is_accepted(server: RunningServer, version: str) -> None:
    room = chat_room(version)
    incoming, handler, _ = pipeline(server, room)
    order = list(room.names.values())
    with server.hs.database.activated():
        await incoming.receive(version, room.events[order[0]])
        results = await handler.handle_pdus(REMOTE, [room.events[e] for e in order[1:]])
        assert results == {e: {} for e in order[1:]}
        assert await state_now(server, room.room_id) == room.state_after[room.names["LAST"]]
        shown = await server.hs.services.rooms.events.get(room.names["LAST"])
    assert shown is not None and shown.content["body"] == "last"


@pytest.mark.parametrize("version", ["2", "11"])
async def test_missing_prev_events_are_fetched_with_get_missing_events(server: RunningServer,
                                                                      version: str) -> None:
    room = chat_room(version, messages=4)
    answers = RoomAnswers(room)
    incoming, handler, _ = pipeline(server, room, answers)
    with server.hs.database.activated():
        for name in ("CREATE", "JA", "PL", "JR", "HV", "JB"):
            await incoming.receive(version, room.events[room.names[name]])
        results = await handler.handle_pdus(REMOTE, [room.events[room.names["LAST"]]])
        assert results == {room.names["LAST"]: {}}
        for name in ("M0", "M3", "NAME"):  # the gap is in the timeline now, in order
            assert await server.hs.services.rooms.events.get(room.names[name]) is not None
        assert await state_now(server, room.room_id) == room.state_after[room.names["LAST"]]
    assert ("POST", "get_missing_events") in answers.requests


async def test_a_gap_that_cannot_be_filled_is_crossed_with_the_origins_state(server: RunningServer) -> None:
    room = chat_room("11", messages=30)
    # The remote "cannot" hand out the middle of the history: the events next to the new one only.
    answers = RoomAnswers(room, withheld={room.names[f"M{n}"] for n in range(29)})
    incoming, handler, _ = pipeline(server, room, answers)
    events = server.hs.services.rooms.events
    with server.hs.database.activated():
        for name in ("CREATE", "JA"):
            await incoming.receive("11", room.events[room.names[name]])
        results = await handler.handle_pdus(REMOTE, [room.events[room.names["LAST"]]])
        assert results == {room.names["LAST"]: {}}
        # The state over the gap (fetched with state_ids, the events with /event) is current.
        assert await state_now(server, room.room_id) == room.state_after[room.names["LAST"]]
        name = await events.state_event(room.room_id, "m.room.name", "")
        member = await server.hs.services.rooms.repo.membership(room.room_id, room.user("b"))
        assert await events.get(room.names["LAST"]) is not None
        assert await events.get(room.names["M5"]) is None  # withheld: never seen
    assert name is not None and name.content["name"] == "late name"
    assert member is not None and member.membership == "join"
    assert ("GET", "state_ids") in answers.requests


async def test_forged_unhashed_unauthorised_and_soft_failed_pdus(server: RunningServer) -> None:
    room = chat_room("11", messages=1)
    a, b, c = room.user("a"), room.user("b"), room.user("c")
    room.add("STRANGER", c, "m.room.message", {"body": "not a member"})  # fails auth
    room.add("BAN", a, "m.room.member", {"membership": "ban"}, b, prev=["LAST"])
    room.add("LATE", b, "m.room.message", {"body": "before the ban reached b"}, prev=["LAST"])
    incoming, handler, _ = pipeline(server, room)
    events = server.hs.services.rooms.events
    names = room.names
    with server.hs.database.activated():
        await incoming.receive("11", room.events[names["CREATE"]])
        setup = [room.events[names[n]] for n in ("JA", "PL", "JR", "HV", "JB", "M0", "NAME", "LAST")]
        assert all(r == {} for r in (await handler.handle_pdus(REMOTE, setup)).values())
        forged = copy.deepcopy(room.events[names["BAN"]])
        forged["signatures"][REMOTE]["ed25519:k1"] = "A" * 86
        results = await handler.handle_pdus(REMOTE, [forged])
        assert "M_FORBIDDEN" in results[names["BAN"]]["error"]
        assert (await state_now(server, room.room_id)).get(("m.room.member", b)) == names["JB"]
        results = await handler.handle_pdus(REMOTE, [room.events[names["STRANGER"]]])
        assert results[names["STRANGER"]]["error"].startswith("rejected")
        assert await events.get(names["STRANGER"]) is None
        assert await handler.handle_pdus(REMOTE, [room.events[names["BAN"]]]) == {names["BAN"]: {}}
        # b's message on a branch without the ban: stored, soft-failed, not shown.
        assert await handler.handle_pdus(REMOTE, [room.events[names["LATE"]]]) == {names["LATE"]: {}}
        assert await events.get(names["LATE"]) is None
        assert [e for e, _ in await events.graph.extremities(room.room_id)] == [names["BAN"]]
        # A content hash that does not match: the event is redacted before use.
        room.add("EDITED", a, "m.room.message", {"body": "original"}, prev=["BAN"])
        tampered = copy.deepcopy(room.events[names["EDITED"]])
        tampered["content"]["body"] = "tampered"
        assert await handler.handle_pdus(REMOTE, [tampered]) == {names["EDITED"]: {}}
        stored = await events.get(names["EDITED"])
    assert stored is not None and stored.content == {}


async def test_a_pdu_relayed_by_another_server_counts_by_its_senders_signature(server: RunningServer) -> None:
    """A resident server passes a new member's join (send_join) on to the room's other servers:
    the transaction's origin is not the sender's server, the sender's signature is what counts."""
    room = chat_room("11", messages=0)
    incoming, handler, _ = pipeline(server, room)
    join = room.events[room.names["JA"]]
    forged = copy.deepcopy(join)
    forged["signatures"][REMOTE]["ed25519:k1"] = "A" * 86  # not the sender's server's signature
    with server.hs.database.activated():
        await incoming.receive("11", room.events[room.names["CREATE"]])
        refused = await handler.handle_pdus("elsewhere.test", [forged])
        relayed = await handler.handle_pdus("elsewhere.test", [join])
        unknown = await handler.handle_pdus(REMOTE, [{**join, "room_id": "!nope:x"}])
        no_sender = await handler.handle_pdus("elsewhere.test", [{**join, "sender": 5}])
    assert "M_FORBIDDEN" in refused[room.names["JA"]]["error"]
    assert relayed == {room.names["JA"]: {}}
    assert list(unknown.values()) == [{"error": "This server is not in that room"}]
    assert "M_BAD_JSON" in str(list(no_sender.values())[0]["error"])


async def test_the_server_acl_refuses_a_denied_origin(server: RunningServer) -> None:
    room = chat_room("11", messages=0)
    a = room.user("a")
    room.add("ACL", a, "m.room.server_acl", {"allow": ["*"], "deny": ["remote.*"]}, "")
    room.add("AFTER", a, "m.room.message", {"body": "refused"})
    incoming, handler, reads = pipeline(server, room)
    with server.hs.database.activated():
        await incoming.receive("11", room.events[room.names["CREATE"]])
        before = [room.events[room.names[n]] for n in ("JA", "PL", "JR", "HV", "JB", "NAME", "LAST", "ACL")]
        assert all(r == {} for r in (await handler.handle_pdus(REMOTE, before)).values())
        results = await handler.handle_pdus(REMOTE, [room.events[room.names["AFTER"]]])
        with pytest.raises(MatrixError) as caught:
            await reads.state_ids(REMOTE, room.room_id, room.names["ACL"])
    assert "banned from this room" in results[room.names["AFTER"]]["error"]
    assert caught.value.status == 403


def test_server_acl_globs() -> None:
    acl = {"allow": ["*.example.org", "good?.net"], "deny": ["bad.example.org"], "allow_ip_literals": False}
    assert server_allowed("chat.example.org:8448", acl)
    assert server_allowed("good1.net", acl)
    assert not server_allowed("bad.example.org", acl)
    assert not server_allowed("good12.net", acl)
    assert not server_allowed("1.2.3.4", {"allow": ["*"], "allow_ip_literals": False})
    assert server_allowed("[::1]:8448", {"allow": ["*"]})
    assert not server_allowed("any.org", {"deny": []})  # no allow list: nobody
    assert server_allowed("any.org", None)


async def test_graph_reads_for_a_server_in_the_room(server: RunningServer) -> None:
    room = chat_room("11", messages=8)
    incoming, handler, reads = pipeline(server, room)
    names = room.names
    with server.hs.database.activated():
        await incoming.receive("11", room.events[names["CREATE"]])
        await handler.handle_pdus(REMOTE, [room.events[e] for e in list(names.values())[1:]])
        state = await reads.state_ids(REMOTE, room.room_id, names["LAST"])
        full = await reads.state(REMOTE, room.room_id, names["NAME"])
        chain = await reads.event_auth(REMOTE, room.room_id, names["JB"])
        backfill = await reads.backfill(REMOTE, room.room_id, [names["LAST"]], 3)
        missing = await reads.missing_events(REMOTE, room.room_id, [names["M2"]], [names["LAST"]], 10, 0)
        one = await reads.event(REMOTE, names["M0"])
        with pytest.raises(MatrixError) as stranger:
            await reads.state_ids("stranger.test", room.room_id, names["LAST"])
    expected = room.state_after[names["NAME"]]  # the state *before* LAST
    assert set(state["pdu_ids"]) == set(expected.values())
    assert names["NAME"] not in {e["content"].get("name") for e in full["pdus"]}
    assert {(e["type"], e.get("state_key")) for e in full["pdus"]} == set(room.state_after[names["M7"]])
    assert {e["type"] for e in chain["auth_chain"]} == {"m.room.create", "m.room.member", "m.room.power_levels",
                                                        "m.room.join_rules"}
    assert [e["content"].get("body") for e in backfill["pdus"]] == ["last", None, "m7"]
    assert [e["content"].get("body") for e in missing["events"]] == ["m3", "m4", "m5", "m6", "m7", None]
    assert one["pdus"][0]["content"]["body"] == "m0"
    assert stranger.value.status == 403 and stranger.value.errcode == "M_FORBIDDEN"

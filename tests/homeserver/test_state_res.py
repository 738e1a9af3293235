"""State resolution v2/v2.1 (pure): the Matrix community's published state-res cases
(in room version 2, whose format and auth rules are version 1's; v1 resolution: test_state_res_v1.py).

The cases (ban vs power levels, join-rule evasion, off-topic power levels,
topic resets, mainline ordering) are the ones the state-resolution v2
proposal and Synapse's test suite publish: a fixed initial room, then two
forks merged at ``END``; the state at ``END`` must hold the named events.
The harness here is Parley's own: it walks the graph in lexicographic
topological order, selects auth events from the state before each event
and resolves at every merge.
"""

from __future__ import annotations

import heapq
import itertools
from typing import Any

import pytest

from homeserver.services.event_auth import auth_types_for_event
from homeserver.services.room_versions import ROOM_VERSIONS
from homeserver.services.state_res import resolve

ALICE, BOB, CHARLIE, EVELYN, ZARA = (f"@{n}:example.com" for n in ("alice", "bob", "charlie", "evelyn", "zara"))
ROOM = "!test:example.com"
JOIN = {"membership": "join"}

Spec = tuple[str, str, str, str | None, dict[str, Any]]  # node, sender, type, state_key, content

INITIAL: list[Spec] = [
    ("CREATE", ALICE, "m.room.create", "", {"creator": ALICE}),
    ("IMA", ALICE, "m.room.member", ALICE, JOIN),
    ("IPOWER", ALICE, "m.room.power_levels", "", {"users": {ALICE: 100}}),
    ("IJR", ALICE, "m.room.join_rules", "", {"join_rule": "public"}),
    ("IMB", BOB, "m.room.member", BOB, JOIN),
    ("IMC", CHARLIE, "m.room.member", CHARLIE, JOIN),
    ("IMZ", ZARA, "m.room.member", ZARA, JOIN),
    ("START", ZARA, "m.room.message", None, {}),
    ("END", ZARA, "m.room.message", None, {}),
]
INITIAL_EDGES = ["START", "IMZ", "IMC", "IMB", "IJR", "IPOWER", "IMA", "CREATE"]


def eid(node: str) -> str:
    return f"${node}:example.com"


def build(specs: list[Spec], edges: list[list[str]], version: str = "2"
          ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[tuple[str, str], str]]]:
    """The events and the state after each; room version 2: version 1's format and rules, resolution v2."""
    rules = ROOM_VERSIONS[version]
    by_node = {s[0]: s for s in [*INITIAL, *specs]}
    prevs: dict[str, set[str]] = {n: set() for n in by_node}
    for chain in [INITIAL_EDGES, *edges]:
        for a, b in itertools.pairwise(chain):
            prevs[a].add(b)
    pending = {n: len(p) for n, p in prevs.items()}
    children: dict[str, list[str]] = {n: [] for n in by_node}
    for n, ps in prevs.items():
        for p in ps:
            children[p].append(n)
    heap = [n for n, c in pending.items() if c == 0]
    heapq.heapify(heap)
    events: dict[str, dict[str, Any]] = {}
    state_after: dict[str, dict[tuple[str, str], str]] = {}
    ts = itertools.count()
    while heap:
        node = heapq.heappop(heap)
        _, sender, event_type, state_key, content = by_node[node]
        before_sets = [state_after[p] for p in sorted(prevs[node])]
        before = resolve(rules, before_sets, events) if before_sets else {}
        keys = auth_types_for_event(event_type, sender, state_key, content, rules)
        pdu: dict[str, Any] = {
            "event_id": eid(node), "room_id": ROOM, "sender": sender, "type": event_type, "content": content,
            "origin_server_ts": next(ts), "prev_events": [[eid(p), {}] for p in sorted(prevs[node])],
            "auth_events": [[before[k], {}] for k in keys if k in before],
            "depth": max((events[eid(p)]["depth"] for p in prevs[node]), default=0) + 1,
        }
        if state_key is not None:
            pdu["state_key"] = state_key
        events[eid(node)] = pdu
        after = dict(before)
        if state_key is not None:
            after[(event_type, state_key)] = eid(node)
        state_after[node] = after
        for child in children[node]:
            pending[child] -= 1
            if pending[child] == 0:
                heapq.heappush(heap, child)
    return events, state_after


def check(specs: list[Spec], edges: list[list[str]], expected: list[str]) -> None:
    events, state_after = build(specs, edges)
    want = {}
    for node in expected:
        pdu = events[eid(node)]
        want[(pdu["type"], pdu["state_key"])] = eid(node)
    start, end = state_after["START"], state_after["END"]
    got = {k: v for k, v in end.items() if k in want or start.get(k) != v}
    assert got == want


def pl(node: str, sender: str, users: dict[str, int], **extra: Any) -> Spec:
    return (node, sender, "m.room.power_levels", "", {"users": users, **extra})


def topic(node: str, sender: str) -> Spec:
    return (node, sender, "m.room.topic", "", {})


def test_ban_vs_pl() -> None:
    check([pl("PA", ALICE, {ALICE: 100, BOB: 50}), ("MA", ALICE, "m.room.member", ALICE, JOIN),
           ("MB", ALICE, "m.room.member", BOB, {"membership": "ban"}), pl("PB", BOB, {ALICE: 100, BOB: 50})],
          [["END", "MB", "MA", "PA", "START"], ["END", "PB", "PA"]], ["PA", "MA", "MB"])


def test_join_rule_evasion() -> None:
    check([("JR", ALICE, "m.room.join_rules", "", {"join_rules": "private"}),
           ("ME", EVELYN, "m.room.member", EVELYN, JOIN)],
          [["END", "JR", "START"], ["END", "ME", "START"]], ["JR"])


def test_offtopic_pl() -> None:
    check([pl("PA", ALICE, {ALICE: 100, BOB: 50}), pl("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}),
           pl("PC", CHARLIE, {ALICE: 100, BOB: 50, CHARLIE: 0})],
          [["END", "PC", "PB", "PA", "START"], ["END", "PA"]], ["PC"])


def test_topic_basic() -> None:
    check([topic("T1", ALICE), pl("PA1", ALICE, {ALICE: 100, BOB: 50}), topic("T2", ALICE),
           pl("PA2", ALICE, {ALICE: 100, BOB: 0}), pl("PB", BOB, {ALICE: 100, BOB: 50}), topic("T3", BOB)],
          [["END", "PA2", "T2", "PA1", "T1", "START"], ["END", "T3", "PB", "PA1"]], ["PA2", "T2"])


def test_topic_reset() -> None:
    check([topic("T1", ALICE), pl("PA", ALICE, {ALICE: 100, BOB: 50}), topic("T2", BOB),
           ("MB", ALICE, "m.room.member", BOB, {"membership": "ban"})],
          [["END", "MB", "T2", "PA", "T1", "START"], ["END", "T1"]], ["T1", "MB", "PA"])


def test_topic() -> None:
    check([topic("T1", ALICE), pl("PA1", ALICE, {ALICE: 100, BOB: 50}), topic("T2", ALICE),
           pl("PA2", ALICE, {ALICE: 100, BOB: 0}), pl("PB", BOB, {ALICE: 100, BOB: 50}), topic("T3", BOB),
           ("MZ1", ZARA, "m.room.message", None, {}), topic("T4", ALICE)],
          [["END", "T4", "MZ1", "PA2", "T2", "PA1", "T1", "START"], ["END", "MZ1", "T3", "PB", "PA1"]],
          ["T4", "PA2"])


def test_mainline_sort() -> None:
    check([topic("T1", ALICE), pl("PA1", ALICE, {ALICE: 100, BOB: 50}), topic("T2", ALICE),
           pl("PA2", ALICE, {ALICE: 100, BOB: 50}, events={"m.room.power_levels": 100}),
           pl("PB", BOB, {ALICE: 100, BOB: 50}), topic("T3", BOB), topic("T4", ALICE)],
          [["END", "T3", "PA2", "T2", "PA1", "T1", "START"], ["END", "T4", "PB", "PA1"]], ["T3", "PA2"])


def test_unconflicted_forks_merge() -> None:
    # Alice sets different state keys on two forks: both survive (a key in one set only is
    # conflicted, and passes the auth checks).
    events, state_after = build(
        [("NB", ALICE, "m.custom", "b", {}), ("NC", ALICE, "m.custom", "c", {}),
         ("NX", BOB, "m.custom", "x", {})],
        [["END", "NB", "START"], ["END", "NC", "NX", "START"]])
    end = state_after["END"]
    assert end[("m.custom", "b")] == eid("NB") and end[("m.custom", "c")] == eid("NC")
    # Bob (power 0 < state_default 50) loses his on resolution.
    assert ("m.custom", "x") not in end


@pytest.mark.parametrize("algorithm", ["v2", "v2.1"])
def test_resolution_ignores_state_set_order(algorithm: str) -> None:
    events, state_after = build(
        [pl("PA", ALICE, {ALICE: 100, BOB: 50}), ("MB", ALICE, "m.room.member", BOB, {"membership": "ban"}),
         pl("PB", BOB, {ALICE: 100, BOB: 50}), topic("T1", BOB)],
        [["END", "MB", "PA", "START"], ["END", "T1", "PB", "PA"]])
    rules = ROOM_VERSIONS["12" if algorithm == "v2.1" else "11"]
    sets = [state_after["MB"], state_after["T1"]]
    forward = resolve(rules, sets, events)
    assert forward == resolve(rules, list(reversed(sets)), events)
    assert forward[("m.room.member", BOB)] == eid("MB")


def test_v21_starts_iterative_checks_from_empty_state() -> None:
    # v2.1 re-checks the conflicted power events from an empty state map: the
    # ban (by the room's top user) still wins, and unconflicted state is kept.
    events, state_after = build(
        [pl("PA", ALICE, {ALICE: 100, BOB: 50}), ("MB", ALICE, "m.room.member", BOB, {"membership": "ban"}),
         pl("PB", BOB, {ALICE: 100, BOB: 50})],
        [["END", "MB", "PA", "START"], ["END", "PB", "PA"]])
    sets = [state_after["MB"], state_after["PB"]]
    v2 = resolve(ROOM_VERSIONS["11"], sets, events)
    v21 = resolve(ROOM_VERSIONS["12"], sets, events)
    assert v2[("m.room.member", BOB)] == v21[("m.room.member", BOB)] == eid("MB")
    assert v21[("m.room.member", ZARA)] == eid("IMZ")

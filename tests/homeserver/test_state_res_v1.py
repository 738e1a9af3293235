"""State resolution v1 (room version 1, spec ``rooms/v1.md``): pure, on the graphs of test_state_res."""

from __future__ import annotations

import hashlib
import itertools

from homeserver.services.room_versions import ROOM_VERSIONS
from homeserver.services.state_res import resolve
from tests.homeserver.test_state_res import ALICE, BOB, CHARLIE, ZARA, build, eid, pl, topic

V1, V2 = ROOM_VERSIONS["1"], ROOM_VERSIONS["2"]
TOPIC = ("m.room.topic", "")
POWER = ("m.room.power_levels", "")


def message(node: str) -> tuple[str, str, str, None, dict[str, str]]:
    return (node, ZARA, "m.room.message", None, {})


def test_only_room_version_1_uses_the_original_algorithm() -> None:
    assert V1.state_res == "v1"
    assert all(v.state_res in ("v2", "v2.1") for k, v in ROOM_VERSIONS.items() if k != "1")


def test_other_conflicts_take_the_deepest_event_where_v2_takes_the_mainline_order() -> None:
    # Fork 1 sets the topic right after START; fork 2 sets it three messages later (deeper) but
    # with an earlier origin_server_ts (the harness stamps nodes in name order: Z1 comes last).
    specs = [topic("Z1", ALICE), message("A1"), message("A2"), message("A3"), topic("T2", ALICE)]
    edges = [["END", "Z1", "START"], ["END", "T2", "A3", "A2", "A1", "START"]]
    events, state_after = build(specs, edges, version="1")
    assert events[eid("T2")]["depth"] > events[eid("Z1")]["depth"]
    assert events[eid("T2")]["origin_server_ts"] < events[eid("Z1")]["origin_server_ts"]
    assert state_after["END"][TOPIC] == eid("T2")
    # The same graph in room version 2 resolves by mainline, then timestamp: the later Z1.
    _, state_after_v2 = build(specs, edges, version="2")
    assert state_after_v2["END"][TOPIC] == eid("Z1")


def test_power_levels_advance_by_depth_and_stop_at_the_first_refused_event() -> None:
    specs = [
        pl("PA", ALICE, {ALICE: 100, BOB: 50}),
        pl("PB", BOB, {ALICE: 100, BOB: 50, CHARLIE: 50}),  # allowed on its fork (bob at 50)
        pl("PD", ALICE, {ALICE: 100, BOB: 0}),  # alice demotes bob on another fork
        message("X1"), message("X2"),
        pl("PC", ALICE, {ALICE: 100, BOB: 0, ZARA: 10}),  # deepest, and alice may send it
    ]
    edges = [["END", "PB", "PA", "START"], ["END", "PD", "START"], ["END", "PC", "X2", "X1", "START"]]
    events, state_after = build(specs, edges, version="1")
    depths = [events[eid(n)]["depth"] for n in ("PD", "PB", "PC")]
    assert depths == sorted(depths) and len(set(depths)) == 3
    # PD (shallowest) first; PB is refused in R (bob has 0 there), which ends the pass: the
    # deeper, allowed PC is never reached.
    assert state_after["END"][POWER] == eid("PD")


def test_ties_in_depth_are_broken_by_sha1_of_the_event_id() -> None:
    specs = [topic("TA", ALICE), topic("TB", ALICE)]
    events, state_after = build(specs, [["END", "TA", "START"], ["END", "TB", "START"]], version="1")
    assert events[eid("TA")]["depth"] == events[eid("TB")]["depth"]
    lowest = min((eid("TA"), eid("TB")), key=lambda e: hashlib.sha1(e.encode()).hexdigest())
    assert state_after["END"][TOPIC] == lowest


def test_a_conflicted_key_none_of_whose_events_is_allowed_is_dropped() -> None:
    # Bob sets m.custom on his fork while PA gives him 50; on the other fork alice demotes him
    # (PD, deeper than PA, so the power-level pass ends on PD).  In R bob's event is refused.
    specs = [
        pl("PA", ALICE, {ALICE: 100, BOB: 50}),
        ("CB", BOB, "m.custom", "", {"by": "bob"}),
        message("Y1"),
        pl("PD", ALICE, {ALICE: 100, BOB: 0}),
        ("CA", ALICE, "m.custom", "", {"by": "alice"}),
    ]
    events, state_after = build(specs, [["END", "CB", "PA", "START"], ["END", "CA", "PD", "Y1", "START"]],
                                version="1")
    end = state_after["END"]
    assert end[POWER] == eid("PD")
    assert end[("m.custom", "")] == eid("CA")  # alice's is allowed in R
    # A key set on one fork only is no conflict in v1 (the union keeps it), even though bob
    # could not set it in R.
    _, only_one = build(specs[:4], [["END", "CB", "PA", "START"], ["END", "PD", "Y1", "START"]], version="1")
    assert only_one["END"][POWER] == eid("PD") and only_one["END"][("m.custom", "")] == eid("CB")
    # Bob set it on both forks before his demotion: both candidates are refused in R, the key is dropped.
    both = [specs[0], specs[1], specs[3], pl("PE", ALICE, {ALICE: 100, BOB: 50}),
            ("CC", BOB, "m.custom", "", {"by": "bob 2"})]
    _, dropped = build(both, [["END", "CB", "PA", "START"], ["END", "PD", "CC", "PE", "START"]], version="1")
    assert dropped["END"][POWER] == eid("PD")
    assert ("m.custom", "") not in dropped["END"]


def test_v1_resolution_ignores_the_order_of_the_state_sets() -> None:
    specs = [pl("PA", ALICE, {ALICE: 100, BOB: 50}), ("MB", ALICE, "m.room.member", BOB, {"membership": "ban"}),
             pl("PB", BOB, {ALICE: 100, BOB: 50}), topic("T1", BOB), topic("T2", ALICE)]
    events, state_after = build(specs, [["END", "MB", "PA", "START"], ["END", "T1", "PB", "PA"],
                                        ["END", "T2", "START"]], version="1")
    sets = [state_after["MB"], state_after["T1"], state_after["T2"]]
    results = [resolve(V1, list(order), events) for order in itertools.permutations(sets)]
    assert all(r == results[0] for r in results)
    assert results[0][("m.room.member", BOB)] == eid("MB")

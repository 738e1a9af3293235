"""The ``m.room.member`` auth rules on plain data, in every room version: join (every join
rule), invite, leave (own, kick, unban), ban and knock.

Each refusal has a neighbouring request that is allowed; the rooms are those of
``auth_rooms.py`` (alice 100, mod and peer 50, bob 0, dave banned, frank
invited, kim knocked, eve never in the room).
"""

from __future__ import annotations

import pytest

from homeserver.services.event_auth import CREATE, POWER_LEVELS
from homeserver.services.room_versions import ROOM_VERSIONS
from tests.homeserver.auth_rooms import (
    ALICE,
    BOB,
    DAVE,
    EVE,
    FRANK,
    KIM,
    MOD,
    PEER,
    VERSIONS,
    Room,
    bare_room,
    create_event,
    room,
    versions,
)

V = ROOM_VERSIONS


def _users(r: Room) -> dict[str, int]:
    return dict(r.state[POWER_LEVELS]["content"]["users"])


@pytest.mark.parametrize("version", VERSIONS)
def test_membership_shape(version: str) -> None:
    r = room(version)
    r.refuses(r.member(BOB, "join") | {"state_key": None}, "Invalid membership")
    r.refuses(r.member(BOB, "dance"), "Invalid membership")
    r.refuses(r.event("m.room.member", BOB, {}, BOB), "Invalid membership")
    knock = r.join_rule("knock").member(EVE, "knock")
    if V[version].knocking:
        r.join_rule("knock").allows(knock)
    else:
        r.join_rule("knock").refuses(knock, "Invalid membership")


@pytest.mark.parametrize("version", VERSIONS)
def test_the_creator_s_first_join(version: str) -> None:
    r = bare_room(version)
    first = r.member(ALICE, "join") | {"prev_events": [r.create_id]}
    r.allows(first)
    if V[version].event_format == "v1":
        r.allows(first | {"prev_events": [[r.create_id, {"sha256": "x"}]]})
    r.refuses(first | {"prev_events": [r.create_id, "$other"]}, "not invited")
    r.refuses(first | {"prev_events": ["$other"]}, "not invited")
    r.refuses(first | {"prev_events": []}, "not invited")
    r.refuses(first | {"sender": MOD}, "only join for yourself")
    r.refuses(r.member(BOB, "join") | {"prev_events": [r.create_id]}, "not invited")
    if V[version].infinite_creators:  # an additional creator joins like anyone else
        create = create_event(version, additional_creators=[BOB])
        plus = Room(version, create, {CREATE: create})
        plus.refuses(plus.member(BOB, "join") | {"prev_events": [plus.create_id]}, "not invited")
        plus.allows(plus.member(ALICE, "join") | {"prev_events": [plus.create_id]})


@pytest.mark.parametrize("version", VERSIONS)
def test_join_by_rule(version: str) -> None:
    rules = V[version]
    r = room(version)
    # Either order of the two ids (a check that only compared them one way would let one through).
    r.refuses(r.member(BOB, "join", MOD), "only join for yourself")
    r.refuses(r.member(BOB, "join", ALICE), "only join for yourself")
    for rule in ("invite", "public", "knock", "restricted", "knock_restricted", "private"):
        ruled = r.join_rule(rule)
        ruled.refuses(ruled.member(DAVE, "join"), "banned")
    # invite (also knock from v7): the invited and the joined only
    for rule in ["invite", *(["knock"] if rules.knocking else [])]:
        ruled = r.join_rule(rule)
        ruled.allows(ruled.member(FRANK, "join"))
        ruled.allows(ruled.member(BOB, "join"))
        ruled.refuses(ruled.member(EVE, "join"), "not invited")
        if rules.knocking:
            ruled.refuses(ruled.member(KIM, "join"), "not invited")
    public = r.join_rule("public")
    public.allows(public.member(EVE, "join"))
    for other in ("private", "closed"):  # unknown rules, sorting after and before "knock": nobody joins
        unknown = r.join_rule(other)
        unknown.refuses(unknown.member(EVE, "join"), "not invited")
        unknown.refuses(unknown.member(FRANK, "join"), "not invited")
    odd = r.put(r.event("m.room.join_rules", ALICE, {"join_rule": 5}, ""))
    odd.refuses(odd.member(EVE, "join"), "not invited")  # an odd rule reads as invite
    odd.allows(odd.member(FRANK, "join"))
    # A rule the version does not have: not even the invited join.
    for rule, has in (("knock", rules.knocking), ("restricted", rules.restricted),
                      ("knock_restricted", rules.knock_restricted)):
        if not has:
            ruled = r.join_rule(rule)
            ruled.refuses(ruled.member(FRANK, "join"), "not invited")


@pytest.mark.parametrize("version", versions(restricted=True))
def test_restricted_joins(version: str) -> None:
    rules = V[version]
    for rule in ["restricted", *(["knock_restricted"] if rules.knock_restricted else [])]:
        r = room(version).join_rule(rule)
        r.allows(r.member(FRANK, "join"))
        r.allows(r.member(BOB, "join"))
        via = "join_authorised_via_users_server"
        r.allows(r.member(EVE, "join", **{via: MOD}))  # mod is at the invite level exactly
        r.refuses(r.member(EVE, "join"), "restricted")
        r.refuses(r.member(EVE, "join", **{via: 5}), "restricted")
        r.refuses(r.member(EVE, "join", **{via: BOB}), "restricted")  # below the invite level
        r.refuses(r.member(EVE, "join", **{via: DAVE}), "restricted")  # not joined
        r.levels(users={MOD: 50, DAVE: 100}).refuses(r.member(EVE, "join", **{via: DAVE}), "restricted")
        r.levels(invite=0).allows(r.member(EVE, "join", **{via: BOB}))


@pytest.mark.parametrize("version", VERSIONS)
def test_invites(version: str) -> None:
    r = room(version)
    r.allows(r.member(EVE, "invite", MOD))  # mod is at the invite level exactly
    r.allows(r.member(FRANK, "invite", MOD))  # invited again
    r.refuses(r.member(EVE, "invite", BOB), "permission to invite")
    r.levels(invite=0).allows(r.member(EVE, "invite", BOB))
    r.refuses(r.member(BOB, "invite", EVE), f"{EVE} is not in the room")
    r.refuses(r.member(EVE, "invite", FRANK), f"{FRANK} is not in the room")
    r.refuses(r.member(DAVE, "invite", ALICE), f"{DAVE} is banned from the room")
    r.refuses(r.member(BOB, "invite", ALICE), f"{BOB} is already in the room")
    if V[version].knocking:
        r.allows(r.member(KIM, "invite", MOD))
    # With a third-party invite the identity server's signature decides (test_event_auth_tpi.py).
    r.refuses(r.member(EVE, "invite", MOD, third_party_invite={"display_name": "e"}), "mxid and token")


@pytest.mark.parametrize("version", VERSIONS)
def test_leaving_and_rejecting(version: str) -> None:
    r = room(version)
    r.allows(r.member(BOB, "leave"))
    r.allows(r.member(FRANK, "leave"))  # rejecting an invite
    r.refuses(r.member(EVE, "leave"), f"{EVE} is not in the room")
    r.refuses(r.member(DAVE, "leave"), f"{DAVE} is not in the room")
    if V[version].knocking:
        r.allows(r.member(KIM, "leave"))  # withdrawing a knock
    else:  # a "knock" membership a v1-v6 room never had
        knocked = r.put(r.event("m.room.member", KIM, {"membership": "knock"}, KIM))
        knocked.refuses(knocked.member(KIM, "leave"), f"{KIM} is not in the room")


@pytest.mark.parametrize("version", VERSIONS)
def test_kicks(version: str) -> None:
    r = room(version)
    r.allows(r.member(BOB, "leave", MOD))  # mod is at the kick level exactly
    r.allows(r.member(FRANK, "leave", MOD))  # revoking an invite
    r.refuses(r.member(MOD, "leave", BOB), "permission to kick")
    r.refuses(r.member(PEER, "leave", MOD), "permission to kick")  # an equal
    r.refuses(r.member(ALICE, "leave", MOD), "permission to kick")
    r.refuses(r.member(BOB, "leave", EVE), f"{EVE} is not in the room")
    r.refuses(r.member(BOB, "leave", FRANK), f"{FRANK} is not in the room")
    r.levels(kick=51).refuses(r.member(BOB, "leave", MOD), "permission to kick")
    lower = r.levels(kick=0, users={**_users(r), FRANK: -1})
    lower.allows(lower.member(FRANK, "leave", BOB))
    lower.refuses(lower.member(PEER, "leave", BOB), "permission to kick")


@pytest.mark.parametrize("version", VERSIONS)
def test_unbans(version: str) -> None:
    r = room(version)
    r.allows(r.member(DAVE, "leave", MOD))  # mod is at the ban level exactly
    r.refuses(r.member(DAVE, "leave", BOB), "permission to unban")
    lower = r.levels(ban=0, kick=0, users={**_users(r), DAVE: -1})
    lower.allows(lower.member(DAVE, "leave", BOB))
    # The ban level lets the unban through; the kick rule still applies after it.
    r.levels(kick=60).refuses(r.member(DAVE, "leave", MOD), "permission to kick")
    r.levels(ban=60).refuses(r.member(DAVE, "leave", MOD), "permission to unban")


@pytest.mark.parametrize("version", VERSIONS)
def test_bans(version: str) -> None:
    r = room(version)
    r.allows(r.member(BOB, "ban", MOD))  # mod is at the ban level exactly
    r.allows(r.member(EVE, "ban", MOD))  # never in the room
    r.refuses(r.member(MOD, "ban", BOB), "permission to ban")
    r.refuses(r.member(PEER, "ban", MOD), "permission to ban")  # an equal
    r.refuses(r.member(ALICE, "ban", MOD), "permission to ban")
    r.refuses(r.member(BOB, "ban", EVE), f"{EVE} is not in the room")
    r.refuses(r.member(BOB, "ban", DAVE), f"{DAVE} is not in the room")
    r.levels(ban=51).refuses(r.member(BOB, "ban", MOD), "permission to ban")
    lower = r.levels(ban=0, users={**_users(r), EVE: -1})
    lower.allows(lower.member(EVE, "ban", BOB))
    lower.refuses(lower.member(FRANK, "ban", BOB), "permission to ban")


@pytest.mark.parametrize("version", versions(knocking=True))
def test_knocks(version: str) -> None:
    rules = V[version]
    r = room(version)
    r.refuses(r.member(EVE, "knock"), "does not accept knocks")
    for rule in ("public", "restricted"):
        ruled = r.join_rule(rule)
        ruled.refuses(ruled.member(EVE, "knock"), "does not accept knocks")
    knock_restricted = r.join_rule("knock_restricted")
    if rules.knock_restricted:
        knock_restricted.allows(knock_restricted.member(EVE, "knock"))
    else:
        knock_restricted.refuses(knock_restricted.member(EVE, "knock"), "does not accept knocks")
    k = r.join_rule("knock")
    k.allows(k.member(EVE, "knock"))
    k.allows(k.member(KIM, "knock"))  # knocking again
    k.refuses(k.member(EVE, "knock", MOD), "only knock for yourself")
    k.refuses(k.member(EVE, "knock", ALICE), "only knock for yourself")
    for user, membership in ((DAVE, "ban"), (FRANK, "invite"), (BOB, "join")):
        k.refuses(k.member(user, "knock"), f"cannot knock: already {membership}")

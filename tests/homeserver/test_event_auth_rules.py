"""The auth rules other than membership, on plain data, in every room version.

Each refusal has a neighbouring request that is allowed (one level lower, the
sender's own server, ...), so that a check which refuses everything fails as
well as one that refuses nothing.  ``test_room_authorization.py`` checks the
refusals a client can reach through HTTP; these also cover what only
federation can send (other servers' events, string levels, v1 aliases).
"""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import MatrixError
from homeserver.services.event_auth import (
    CREATE,
    JOIN_RULES,
    POWER_LEVELS,
    as_level,
    auth_types_for_event,
    check_event_allowed,
    creators,
    is_user_id,
    level_for,
    member_key,
    membership_of,
    required_event_level,
    user_power,
    validate_power_levels_content,
    version_of_state,
)
from homeserver.services.room_versions import INFINITE_POWER, ROOM_VERSIONS
from tests.homeserver.auth_rooms import (
    ALICE,
    BOB,
    DAVE,
    EVE,
    FRANK,
    MOD,
    PEER,
    VERSIONS,
    ZED,
    Room,
    bare_room,
    create_event,
    room,
    versions,
)

V = ROOM_VERSIONS


def test_user_ids_are_at_most_255_characters() -> None:
    longest = "@" + "a" * 249 + ":hs.x"
    assert len(longest) == 255 and is_user_id(longest)
    assert not is_user_id(longest + "x")
    assert not is_user_id("alice:hs") and not is_user_id("@alice") and not is_user_id(5)


def test_levels_are_integers_and_before_v10_also_integer_strings() -> None:
    assert as_level(True, 7) == 7 and as_level(False, 7) == 7
    assert as_level(5, 7) == 5 and as_level(-3, 7) == -3
    assert as_level(" 42 ", 7, V["9"]) == 42 and as_level("42", 7) == 42
    assert as_level("42", 7, V["10"]) == 7
    assert as_level("4x", 7, V["9"]) == 7 and as_level(None, 7) == 7 and as_level(4.0, 7) == 7


@pytest.mark.parametrize("version", VERSIONS)
def test_creators_and_their_power(version: str) -> None:
    rules = V[version]
    r = bare_room(version)
    assert creators(r.state) == {ALICE}
    assert creators({}) == set()
    # Before v11 content.creator counts (the sender only without one), from v11 the sender.
    other = create_event(version, creator=MOD)
    assert creators({CREATE: other}) == ({ALICE} if rules.creator_is_sender else {MOD})
    bare = create_event(version)
    bare["content"].pop("creator", None)
    assert creators({CREATE: bare}) == {ALICE}
    extra = create_event(version, additional_creators=[BOB, 5])
    assert creators({CREATE: extra}) == ({ALICE, BOB} if rules.infinite_creators else {ALICE})
    assert creators({CREATE: create_event(version, additional_creators=BOB)}) == {ALICE}
    # Without power levels the creator has 100 (v12: infinite), everyone else 0.
    assert user_power(r.state, ALICE) == (INFINITE_POWER if rules.infinite_creators else 100)
    assert user_power(r.state, BOB) == 0
    assert user_power({CREATE: extra}, BOB) == (INFINITE_POWER if rules.infinite_creators else 0)
    assert user_power(room(version).state, ALICE) == (INFINITE_POWER if rules.infinite_creators else 100)


@pytest.mark.parametrize("version", VERSIONS)
def test_levels_read_from_the_power_levels_or_their_defaults(version: str) -> None:
    r = room(version)
    assert [user_power(r.state, u) for u in (MOD, BOB, EVE)] == [50, 0, 0]
    assert user_power(r.levels(users_default=7).state, EVE) == 7
    assert user_power(r.levels(users_default=None).state, EVE) == 0
    assert user_power(r.levels(users=[MOD]).state, MOD) == 0
    # No power levels event: the spec's defaults; one without the key: the same defaults.
    bare = bare_room(version)
    assert [level_for(bare.state, n) for n in ("invite", "kick", "ban", "redact")] == [0, 50, 50, 50]
    bare_levels = r.levels(invite=None, kick=None, ban=None, redact=None)
    assert [level_for(bare_levels.state, n) for n in ("invite", "kick", "ban", "redact")] == [0, 50, 50, 50]
    assert [level_for(r.levels(kick=3).state, "kick"), level_for(r.state, "invite")] == [3, 50]
    assert required_event_level(bare.state, "m.room.name", True) == 0
    assert required_event_level(r.state, "m.room.avatar", True) == 100
    assert required_event_level(r.state, "m.room.topic", True) == 50
    assert required_event_level(r.state, "m.room.message", False) == 0
    defaults = r.levels(state_default=None, events_default=None, events=None)
    assert required_event_level(defaults.state, "m.room.topic", True) == 50
    assert required_event_level(defaults.state, "m.room.message", False) == 0
    assert required_event_level(r.levels(events_default=9).state, "m.room.message", False) == 9
    assert required_event_level(r.levels(events=["m.room.avatar"]).state, "m.room.avatar", True) == 50
    # String levels count before v10 only.
    strings = r.levels(users={MOD: "60"}, kick="70", events={"m.x": "80"})
    expected = [0, 50, 0] if V[version].integer_power_levels else [60, 70, 80]
    assert [user_power(strings.state, MOD), level_for(strings.state, "kick"),
            required_event_level(strings.state, "m.x", False)] == expected


def test_rooms_without_a_known_version() -> None:
    """No create event, or one of an unknown version: levels still read, nobody is a creator."""
    r = room("11")
    assert user_power({}, BOB) == 0
    unknown = {**r.state, CREATE: create_event("11") | {"content": {"room_version": "99"}}}
    assert [user_power(unknown, u) for u in (MOD, BOB)] == [50, 0]
    assert level_for(unknown, "kick") == 50 and required_event_level(unknown, "m.room.avatar", True) == 100
    assert version_of_state({CREATE: create_event("11") | {"content": 5}}) is V["1"]
    with pytest.raises(MatrixError, match="no m.room.create"):
        version_of_state({})


def test_membership_defaults_to_leave() -> None:
    r = room("11")
    assert [membership_of(r.state, u) for u in (BOB, DAVE, FRANK, EVE)] == ["join", "ban", "invite", "leave"]
    odd = r.put(r.event("m.room.member", EVE, {"membership": 5}, EVE))
    assert membership_of(odd.state, EVE) == "leave"


@pytest.mark.parametrize("version", VERSIONS)
def test_auth_events_selection(version: str) -> None:
    rules = V[version]
    head = [] if rules.room_id_from_create else [CREATE]
    assert auth_types_for_event("m.room.create", ALICE, "", {}, rules) == []
    assert auth_types_for_event("m.room.message", BOB, None, {}, rules) == [*head, POWER_LEVELS, member_key(BOB)]
    assert auth_types_for_event("m.room.name", BOB, "", {}, rules) == [*head, POWER_LEVELS, member_key(BOB)]
    join = auth_types_for_event("m.room.member", BOB, BOB, {"membership": "join"}, rules)
    assert join == [*head, POWER_LEVELS, member_key(BOB), JOIN_RULES]
    for membership in ("invite", "knock"):
        assert auth_types_for_event("m.room.member", MOD, BOB, {"membership": membership}, rules) == [
            *head, POWER_LEVELS, member_key(MOD), member_key(BOB), JOIN_RULES]
    assert auth_types_for_event("m.room.member", MOD, BOB, {"membership": "ban"}, rules) == [
        *head, POWER_LEVELS, member_key(MOD), member_key(BOB)]
    tpi = {"membership": "invite", "third_party_invite": {"signed": {"token": "tok"}}}
    assert auth_types_for_event("m.room.member", MOD, BOB, tpi, rules)[-1] == ("m.room.third_party_invite", "tok")
    for odd in ({"signed": "tok"}, "tok", {"signed": {"token": 5}}):
        assert ("m.room.third_party_invite", "tok") not in auth_types_for_event(
            "m.room.member", MOD, BOB, {"membership": "invite", "third_party_invite": odd}, rules)
    assert ("m.room.third_party_invite", "tok") not in auth_types_for_event(
        "m.room.member", BOB, BOB, {**tpi, "membership": "join"}, rules)
    via = {"membership": "join", "join_authorised_via_users_server": MOD}
    assert (member_key(MOD) in auth_types_for_event("m.room.member", BOB, BOB, via, rules)) == rules.restricted
    for content in ({**via, "join_authorised_via_users_server": "mod"}, {**via, "membership": "invite"}):
        assert member_key(MOD) not in auth_types_for_event("m.room.member", EVE, BOB, content, rules)
    # Without a version: v11's selection.
    assert auth_types_for_event("m.room.message", BOB, None, {}) == [CREATE, POWER_LEVELS, member_key(BOB)]


@pytest.mark.parametrize("version", VERSIONS)
def test_create_event(version: str) -> None:
    rules = V[version]
    r = bare_room(version)
    r.allows(create_event(version))
    r.refuses(create_event(version) | {"prev_events": ["$x"]}, "first event")
    r.refuses(create_event(version) | {"content": {"room_version": "99", "creator": ALICE}}, "Unsupported")
    r.refuses(create_event(version) | {"content": {"room_version": 11, "creator": ALICE}}, "Unsupported")
    if rules.room_id_from_create:
        r.refuses(create_event(version) | {"room_id": "!room:hs"}, "no room_id")
        r.allows(create_event(version, additional_creators=[BOB]))
        r.refuses(create_event(version, additional_creators=BOB), "additional_creators")
        r.refuses(create_event(version, additional_creators=[BOB, "bob"]), "additional_creators")
        return
    r.refuses(create_event(version) | {"room_id": "!room:other"}, "different servers")
    r.allows(create_event(version, sender=ZED) | {"room_id": "!room:other"})
    no_creator = create_event(version)
    no_creator["content"].pop("creator", None)
    if rules.creator_is_sender:
        r.allows(no_creator)
    else:
        r.refuses(no_creator, "needs a creator")


@pytest.mark.parametrize("version", VERSIONS)
def test_malformed_events_and_rooms(version: str) -> None:
    r = room(version)
    message = r.event("m.room.message", BOB, {"body": "hi"})
    r.allows(message)
    r.refuses(message | {"type": 5}, "Malformed")
    r.refuses(message | {"sender": None}, "Malformed")
    r.refuses(message | {"content": []}, "must be an object")
    r.refuses(message | {"room_id": 5}, "Malformed")
    without_create = {k: v for k, v in r.state.items() if k != CREATE}
    with pytest.raises(MatrixError, match="no m.room.create"):
        check_event_allowed(message, without_create)
    unknown = {**r.state, CREATE: create_event(version) | {"content": {"room_version": "99"}}}
    with pytest.raises(MatrixError, match="Unsupported"):
        check_event_allowed(message, unknown)
    if V[version].room_id_from_create:
        r.refuses(message | {"room_id": "!other:hs"}, "not the id of its m.room.create")


@pytest.mark.parametrize("version", VERSIONS)
def test_unfederated_rooms_refuse_other_servers(version: str) -> None:
    for federate, allowed in ((None, True), (True, True), (0, True), (False, False)):  # False only
        extra = {} if federate is None else {"m.federate": federate}
        create = create_event(version, **extra)
        r = Room(version, create, {**room(version).state, CREATE: create})
        r = r.put(r.member(ZED, "join"))
        message = r.event("m.room.message", ZED, {"body": "hi"})
        if allowed:
            r.allows(message)
        else:
            r.refuses(message, "not federated")
            r.allows(r.event("m.room.message", BOB, {"body": "hi"}))


@pytest.mark.parametrize("version", VERSIONS)
def test_aliases_special_rule_before_v6(version: str) -> None:
    r = room(version)
    aliases = r.event("m.room.aliases", BOB, {"aliases": ["#a:hs"]}, "hs")
    if V[version].special_aliases:
        r.allows(aliases)  # bob's level does not matter, his server does
        r.allows(r.event("m.room.aliases", EVE, {"aliases": []}, "hs"))
        r.refuses(aliases | {"state_key": "other"}, "own server")
        r.refuses({k: v for k, v in aliases.items() if k != "state_key"}, "needs a state key")
    else:  # an ordinary state event: state_default (50) applies
        r.refuses(aliases, "permission to send m.room.aliases")
        r.allows(r.event("m.room.aliases", MOD, {"aliases": []}, "hs"))


@pytest.mark.parametrize("version", VERSIONS)
def test_senders_must_be_joined(version: str) -> None:
    r = room(version)
    for user in (EVE, DAVE, FRANK):
        r.refuses(r.event("m.room.message", user, {"body": "hi"}), "is not in the room")
    r.allows(r.event("m.room.message", BOB, {"body": "hi"}))


@pytest.mark.parametrize("version", VERSIONS)
def test_third_party_invite_events_need_the_invite_level(version: str) -> None:
    r = room(version)
    invite = r.event("m.room.third_party_invite", BOB, {"display_name": "x"}, "tok")
    r.refuses(invite, "permission to invite")
    r.allows(invite | {"sender": MOD})
    r.levels(invite=0).allows(invite)


@pytest.mark.parametrize("version", VERSIONS)
def test_event_levels(version: str) -> None:
    r = room(version)
    name = r.event("m.room.name", BOB, {"name": "n"}, "")
    r.refuses(name, "permission to send m.room.name")
    r.allows(name | {"sender": MOD})
    r.refuses(r.event("m.room.avatar", MOD, {}, ""), "permission to send m.room.avatar")
    r.refuses(r.event("m.custom", BOB, {}, "x"), "permission to send m.custom")  # state_default 50
    r.allows(r.event("m.custom", MOD, {}, "x"))
    r.allows(r.event("m.room.message", BOB, {"body": "hi"}))
    r.levels(events_default=1).refuses(r.event("m.room.message", BOB, {"body": "hi"}), "permission")
    r.levels(users_default=1, events_default=1).allows(r.event("m.room.message", BOB, {"body": "hi"}))


@pytest.mark.parametrize("version", VERSIONS)
def test_state_keyed_by_a_user_id_is_the_sender_s_own(version: str) -> None:
    r = room(version).levels(state_default=0)
    r.refuses(r.event("m.custom", BOB, {}, MOD), "keyed by your own user id")
    r.allows(r.event("m.custom", BOB, {}, BOB))
    r.allows(r.event("m.custom", BOB, {}, "not@a user"))


@pytest.mark.parametrize("version", VERSIONS)
def test_redactions(version: str) -> None:
    r = room(version)
    foreign = r.event("m.room.redaction", BOB, {"redacts": "$x:other"}, redacts="$x:other", event_id="$r:hs")
    own_server = foreign | {"redacts": "$x:hs", "content": {"redacts": "$x:hs"}}
    r.allows(own_server)
    r.allows(foreign | {"sender": MOD})  # at the redact level exactly
    if V[version].redaction_auth_rule:
        r.refuses(foreign, "only redact your own server")
        r.levels(redact=0).allows(foreign)
    else:  # v3+: the server that knows the redacted event decides
        r.allows(foreign)


def _pl(r: Any, sender: str = MOD, **changes: Any) -> dict[str, Any]:
    return r.event("m.room.power_levels", sender, {**r.levels(**changes).state[POWER_LEVELS]["content"]}, "")


@pytest.mark.parametrize("version", VERSIONS)
def test_power_levels_changes_within_the_sender_s_level(version: str) -> None:
    r = room(version)
    r.allows(_pl(r))  # unchanged: alice stays above mod
    r.allows(_pl(r, ban=40))
    r.allows(_pl(r, ban=50, kick=50, invite=0, users_default=50, events_default=50, state_default=50))
    r.refuses(_pl(r, kick=60), "raise kick above")
    r.refuses(_pl(r, kick=51), "raise kick above")
    for key in ("users_default", "events_default", "state_default", "ban", "redact", "invite"):
        r.refuses(_pl(r, **{key: 51}), f"raise {key} above")
    above = r.levels(redact=60)
    above.refuses(_pl(above, redact=40), "change redact: it is above")
    above.refuses(_pl(above, redact=None), "change redact: it is above")
    events = dict(r.state[POWER_LEVELS]["content"]["events"])
    r.refuses(_pl(r, events={**events, "m.room.avatar": 50}), "change events.m.room.avatar")
    r.refuses(_pl(r, events={k: v for k, v in events.items() if k != "m.room.avatar"}), "events.m.room.avatar")
    r.allows(_pl(r, events={**events, "m.x": 50}))
    r.refuses(_pl(r, events={**events, "m.x": 51}), "raise events.m.x")
    notifications = _pl(r, notifications={"room": 0})
    if V[version].notifications_levels:
        r.refuses(notifications, "notifications.room")
    else:
        r.allows(notifications)
    r.allows(_pl(r, notifications={"room": 100}))


@pytest.mark.parametrize("version", VERSIONS)
def test_power_levels_of_users(version: str) -> None:
    r = room(version)
    users = dict(r.state[POWER_LEVELS]["content"]["users"])
    r.allows(_pl(r, users={**users, BOB: 50}))
    r.allows(_pl(r, users={**users, EVE: 50}))
    r.refuses(_pl(r, users={**users, BOB: 51}), f"raise users.{BOB}")
    r.allows(_pl(r, users={**users, MOD: 10}))  # one's own level may go down
    r.refuses(_pl(r, users={**users, PEER: 10}), "at or above your own level")  # an equal's may not
    r.refuses(_pl(r, users={k: v for k, v in users.items() if k != PEER}), "at or above your own level")
    r.allows(_pl(r, users={**users, BOB: 0}))
    r.allows(_pl(r.levels(users={**users, BOB: 10}), users=users))  # removing a lower one is a change down
    if not V[version].infinite_creators:
        r.refuses(_pl(r, users={**users, ALICE: 50}), "at or above your own level")


@pytest.mark.parametrize("version", VERSIONS)
def test_power_levels_shapes(version: str) -> None:
    rules = V[version]
    r = room(version)
    users = dict(r.state[POWER_LEVELS]["content"]["users"])
    strings = _pl(r, users={**users, BOB: "10"}, ban="50")
    bad_user = _pl(r, users={**users, "bob": 0})
    if rules.integer_power_levels:
        r.refuses(strings, "must be an integer")
        r.refuses(_pl(r, ban=True), "ban must be an integer")
        r.refuses(_pl(r, events={"m.x": "1"}), "events.m.x must be an integer")
        r.refuses(_pl(r, users=[BOB]), "users must be an object")
        r.refuses(bad_user, "is not a user id")
    else:
        r.allows(strings)
        r.refuses(_pl(r, users=[BOB]), "map user ids")
        r.refuses(bad_user, "map user ids")
    if rules.infinite_creators:
        r.refuses(_pl(r, sender=ALICE, users={**users, ALICE: 100}), "creators cannot be given")
        plus_create = create_event(version, additional_creators=[BOB])
        plus = Room(version, plus_create, {**r.state, CREATE: plus_create})
        plus.refuses(_pl(plus, sender=ALICE, users={**users, BOB: 10}), "creators cannot be given")
        r.allows(_pl(r, sender=ALICE, users={**users, BOB: 10}))
    # The room's first power levels: any level, by a member who may send state.
    first = bare_room(version)
    first = first.put(first.member(ALICE, "join"))
    first.allows(first.event("m.room.power_levels", ALICE, {"users": {BOB: 100}, "kick": 0}, ""))


@pytest.mark.parametrize("version", versions(integer_power_levels=False))
def test_a_boolean_level_reads_as_0_before_v10(version: str) -> None:
    """A new ``ban: true`` is level 0: allowed for a sender at 0, a raise for one at -1."""
    users = dict(room(version).state[POWER_LEVELS]["content"]["users"])
    at_0 = room(version).levels(ban=None, events={"m.room.power_levels": 0})
    at_0.allows(_pl(at_0, sender=BOB, ban=True))
    below = room(version).levels(ban=None, events={"m.room.power_levels": -1}, users={**users, BOB: -1})
    below.refuses(_pl(below, sender=BOB, ban=True), "raise ban above")


def test_validate_power_levels_content() -> None:
    validate_power_levels_content({"users": {BOB: 0}, "events": {"m.x": 1}, "notifications": {"room": 2}, "ban": 3})
    for bad in ({"kick": "50"}, {"kick": False}, {"notifications": []}, {"notifications": {"room": "1"}},
                {"users": {"x": 1}}, {"events": {"m.x": None}}):
        with pytest.raises(MatrixError) as caught:
            validate_power_levels_content(bad)
        assert caught.value.status == 400

"""A PDU that canonical JSON cannot carry (a float in its content) is refused with 400 M_BAD_JSON,
not a 500: SyTest's "Outbound federation will ignore a missing event with bad JSON for room version 6"
hands one over in a get_missing_events answer, which goes through the same check."""

from __future__ import annotations

import pytest

from common.errors import MatrixError
from homeserver.services.events import hash_and_sign
from tests.homeserver.federation.test_joins import create_room
from tests.support.federation import Cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


async def test_a_pdu_with_a_float_is_refused_as_bad_json(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, room_version="10")
    joined = await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})
    assert joined.status_code == 200, joined.text
    with hs1.hs.database.activated():
        head = await hs1.hs.services.rooms.events.room_head(room_id)
        member = await hs1.hs.services.rooms.events.state_event(room_id, "m.room.member", alice.user_id)
    assert head is not None and member is not None
    key = hs1.hs.signing_key
    pdu = hash_and_sign({"type": "m.room.message", "sender": alice.user_id, "room_id": room_id,
                         "content": {"body": "x", "n": 1}, "depth": head.last_depth + 1,
                         "origin_server_ts": 1, "prev_events": [head.last_event_id],
                         "auth_events": [member.event_id]}, H1, key.version, key.private_key, "10")
    pdu["content"]["n"] = 1.5
    with hs2.hs.database.activated(), pytest.raises(MatrixError) as refused:
        await hs2.hs.federation_rooms.incoming.receive("10", pdu)
    assert (refused.value.status, refused.value.errcode) == (400, "M_BAD_JSON")
    assert "canonical JSON" in refused.value.message

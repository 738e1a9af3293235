"""Redactions sent by another server's user take effect on the room's other servers (spec,
client-server API "Redactions": applied when the redaction's sender is of the target's server or
may redact by power level), in room versions with either event-id format and redaction location."""

from __future__ import annotations

from typing import Any

import pytest

from tests.homeserver.federation.test_joins import create_room
from tests.homeserver.federation.test_room_flow import say, timeline_until
from tests.support.federation import Cluster
from tests.support.server import Account, RunningServer

H1, H2 = "hs1.localhost", "hs2.localhost"


async def _event(server: RunningServer, account: Account, room_id: str, event_id: str) -> dict[str, Any]:
    response = await server.api("GET", f"rooms/{room_id}/event/{event_id}", account)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.mark.parametrize("version", ["1", "11"])
async def test_a_remote_users_redaction_of_its_own_message(pair: Cluster, version: str) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, room_version=version)
    joined = await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1},
                           json={"foo": "kept"})
    assert joined.status_code == 200, joined.text
    _, since = await timeline_until(hs1, alice, room_id, set())
    # The joining server's member content (the request's own fields too) reaches the room.
    member = await hs1.api("GET", f"rooms/{room_id}/state/m.room.member/{bob.user_id}", alice)
    assert member.json()["membership"] == "join" and member.json()["foo"] == "kept"

    mine = await say(hs2, bob, room_id, "bob's own", "b1")
    theirs = await say(hs1, alice, room_id, "alice's", "a1")
    seen, since = await timeline_until(hs1, alice, room_id, {"bob's own"}, since)
    await timeline_until(hs2, bob, room_id, {"alice's"})

    redaction = await hs2.api("PUT", f"rooms/{room_id}/redact/{mine}/r1", bob, json={})
    assert redaction.status_code == 200, redaction.text
    redaction_id = redaction.json()["event_id"]
    # Bob (power 0) may not redact Alice's message: hs2 refuses it at once.
    refused = await hs2.api("PUT", f"rooms/{room_id}/redact/{theirs}/r2", bob, json={})
    assert refused.status_code == 403, refused.text

    for _ in range(30):  # long-polls until the redaction arrived (each returns on new events)
        if redaction_id in {e["event_id"] for e in seen}:
            break
        response = await hs1.api("GET", "sync", alice, params={"since": since, "timeout": "10000"})
        since = response.json()["next_batch"]
        seen += response.json()["rooms"]["join"].get(room_id, {}).get("timeline", {}).get("events", [])
    assert redaction_id in {e["event_id"] for e in seen}
    redacted = await _event(hs1, alice, room_id, mine)
    assert redacted["content"] == {}
    assert redacted["unsigned"]["redacted_because"]["event_id"] == redaction_id
    assert redacted["unsigned"]["redacted_by"] == redaction_id
    assert (await _event(hs1, alice, room_id, theirs))["content"]["body"] == "alice's"

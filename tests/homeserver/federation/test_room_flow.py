"""A room shared by two servers over real TLS: messages and state both ways through /send and /sync."""

from __future__ import annotations

from typing import Any

from tests.homeserver.federation.test_joins import create_room
from tests.support.federation import Cluster
from tests.support.server import Account, ClientCalls

H1, H2 = "hs1.localhost", "hs2.localhost"


async def timeline_until(server: ClientCalls, account: Account, room_id: str, want: set[str],
                         since: str | None = None) -> tuple[list[dict[str, Any]], str]:
    """Long-poll /sync until every body in ``want`` was in the room's timeline (no timing assumptions)."""
    seen: list[dict[str, Any]] = []
    while since is None or not want <= {e["content"].get("body") for e in seen}:
        params = {"timeout": "20000" if since else "0", **({"since": since} if since else {})}
        response = await server.api("GET", "sync", account, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += body["rooms"]["join"].get(room_id, {}).get("timeline", {}).get("events", [])
        since = body["next_batch"]
    return seen, since


async def say(server: ClientCalls, account: Account, room_id: str, text: str, txn: str) -> str:
    response = await server.api("PUT", f"rooms/{room_id}/send/m.room.message/{txn}", account,
                                json={"msgtype": "m.text", "body": text})
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


async def test_messages_and_state_flow_both_ways(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, name="Flow")
    _, alice_since = await timeline_until(hs1, alice, room_id, set())
    assert (await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})).status_code == 200
    _, bob_since = await timeline_until(hs2, bob, room_id, set())
    first = await say(hs1, alice, room_id, "hello from hs1", "t1")
    seen, bob_since = await timeline_until(hs2, bob, room_id, {"hello from hs1"}, bob_since)
    assert [e["event_id"] for e in seen if e["content"].get("body") == "hello from hs1"] == [first]
    reply = await say(hs2, bob, room_id, "hello from hs2", "t2")
    seen, alice_since = await timeline_until(hs1, alice, room_id, {"hello from hs2"}, alice_since)
    assert [e["event_id"] for e in seen if e["content"].get("body") == "hello from hs2"] == [reply]
    # A state change on hs1 is state on hs2.
    renamed = await hs1.api("PUT", f"rooms/{room_id}/state/m.room.name", alice, json={"name": "Renamed"})
    assert renamed.status_code == 200, renamed.text
    await say(hs1, alice, room_id, "after the rename", "t3")
    await timeline_until(hs2, bob, room_id, {"after the rename"}, bob_since)
    name = await hs2.api("GET", f"rooms/{room_id}/state/m.room.name", bob)
    assert name.json() == {"name": "Renamed"}


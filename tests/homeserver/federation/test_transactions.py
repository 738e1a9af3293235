"""Transactions between two real servers: EDUs delivered, replays answered once, limits, queues that survive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from homeserver.federation.errors import RemoteError
from tests.support.federation import Cluster, cluster
from tests.support.server import Account, RunningServer

H1, H2 = "hs1.localhost", "hs2.localhost"
SEND = "/_matrix/federation/v1/send/"


async def _to_device_events(server: RunningServer, account: Account, since: str | None, count: int
                            ) -> tuple[list[dict[str, Any]], str]:
    """Long-poll /sync until ``count`` to-device events arrived (no timing assumptions)."""
    events: list[dict[str, Any]] = []
    while since is None or len(events) < count:
        params = {"timeout": "10000" if since else "0", **({"since": since} if since else {})}
        response = await server.api("GET", "sync", account, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        events += body.get("to_device", {}).get("events", [])
        since = body["next_batch"]
    return events, since


def _edu(sender: str, target: Account, message_id: str, content: dict[str, Any]) -> dict[str, Any]:
    return {"edu_type": "m.direct_to_device", "content": {
        "sender": sender, "type": "m.test", "message_id": message_id,
        "messages": {target.user_id: {target.device_id: content}}}}


async def test_to_device_reaches_the_other_server(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    _, since = await _to_device_events(hs2, bob, None, 0)
    sent = await hs1.api("PUT", "sendToDevice/m.test/t1", alice,
                         json={"messages": {bob.user_id: {bob.device_id: {"hello": "bob"}}}})
    assert sent.status_code == 200, sent.text
    events, _ = await _to_device_events(hs2, bob, since, 1)
    assert events == [{"sender": alice.user_id, "type": "m.test", "content": {"hello": "bob"}}]


async def test_replayed_transaction_gets_the_stored_answer_and_is_applied_once(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    bob = await hs2.register("bob")
    _, since = await _to_device_events(hs2, bob, None, 0)
    client = hs1.hs.federation.client
    first = {"origin": H1, "origin_server_ts": 1, "pdus": [],
             "edus": [_edu(f"@alice:{H1}", bob, "m1", {"n": 1})]}
    with hs1.hs.database.activated():
        answer = await client.request(H2, "PUT", SEND + "txn-a", json=first)
        # The same transaction id with other content: the stored answer, nothing applied.
        replay = await client.request(H2, "PUT", SEND + "txn-a",
                                      json=dict(first, edus=[_edu(f"@alice:{H1}", bob, "m2", {"n": 2})]))
        assert replay == answer == {"pdus": {}}
        # A new transaction id is applied: the marker shows m2 never was.
        await client.request(H2, "PUT", SEND + "txn-b", json=dict(first, edus=[_edu(f"@alice:{H1}", bob, "m3",
                                                                                     {"n": 3})]))
    events, _ = await _to_device_events(hs2, bob, since, 2)
    assert [e["content"]["n"] for e in events] == [1, 3]


async def test_refused_transactions(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    bob = await hs2.register("bob")
    client = hs1.hs.federation.client

    async def refused(txn_id: str, body: dict[str, Any]) -> RemoteError:
        with hs1.hs.database.activated(), pytest.raises(RemoteError) as caught:
            await client.request(H2, "PUT", SEND + txn_id, json=body)
        return caught.value

    base: dict[str, Any] = {"origin": H1, "origin_server_ts": 1, "pdus": [], "edus": []}
    wrong_origin = await refused("o", dict(base, origin=H2))
    assert (wrong_origin.remote_status, wrong_origin.errcode) == (403, "M_FORBIDDEN")
    # More PDUs/EDUs than the spec's schema allows is a malformed body: 400, as SyTest's
    # "Server correctly handles transactions that break edu limits" expects (the spec names no status).
    pdus = await refused("p", dict(base, pdus=[{"type": "m.room.message"}] * 51))
    assert (pdus.remote_status, pdus.errcode) == (400, "M_BAD_JSON")
    edus = await refused("e", dict(base, edus=[_edu(f"@a:{H1}", bob, f"x{i}", {}) for i in range(101)]))
    assert (edus.remote_status, edus.errcode) == (400, "M_BAD_JSON")
    big = await refused("b", dict(base, edus=[_edu(f"@a:{H1}", bob, "big", {"pad": "x" * 5_000_000})]))
    assert (big.remote_status, big.errcode) == (413, "M_TOO_LARGE")
    shape = await refused("s", dict(base, pdus={}))
    assert (shape.remote_status, shape.errcode) == (400, "M_BAD_JSON")
    # An EDU speaking for another server's user is not applied.
    _, since = await _to_device_events(hs2, bob, None, 0)
    with hs1.hs.database.activated():
        await client.request(H2, "PUT", SEND + "f", json=dict(base, edus=[
            _edu(f"@mallory:{H2}", bob, "forged", {"n": "forged"}), _edu(f"@alice:{H1}", bob, "ok", {"n": "ok"})]))
    events, _ = await _to_device_events(hs2, bob, since, 1)
    assert [e["content"]["n"] for e in events] == ["ok"]


async def test_pdus_get_an_answer_each(pair: Cluster) -> None:
    hs1 = pair.running[H1]
    pdu = {"type": "m.room.message", "room_id": "!r:hs1.localhost", "sender": f"@a:{H1}", "content": {},
           "depth": 1, "origin_server_ts": 1, "prev_events": [], "auth_events": [], "hashes": {"sha256": "x"}}
    with hs1.hs.database.activated():
        answer = await hs1.hs.federation.client.request(H2, "PUT", SEND + "pdu", json={
            "origin": H1, "origin_server_ts": 1, "pdus": [pdu], "edus": []})
    [(event_id, result)] = answer["pdus"].items()
    assert event_id.startswith("$") and result.get("error")


async def test_queue_survives_a_stopped_destination(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as servers:
        hs1, hs2 = servers.running[H1], servers.running[H2]
        alice, bob = await hs1.register("alice"), await hs2.register("bob")
        _, since = await _to_device_events(hs2, bob, None, 0)
        await servers.stop(H2)
        for n in range(3):
            sent = await hs1.api("PUT", f"sendToDevice/m.test/q{n}", alice,
                                 json={"messages": {bob.user_id: {bob.device_id: {"n": n}}}})
            assert sent.status_code == 200
        # hs1 restarts too: the queue is in its database, not in its memory.
        await servers.stop(H1)
        await servers.start(H1)
        hs2 = await servers.start(H2)
        events, _ = await _to_device_events(hs2, bob, since, 3)
        assert sorted(e["content"]["n"] for e in events) == [0, 1, 2]

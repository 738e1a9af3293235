"""Typing and receipts from another server reach our users, only for its members of the room."""

from __future__ import annotations

from typing import Any

from homeserver.services.events import EventSpec, build_pdu
from homeserver.services.incoming import IncomingEvents
from tests.support.federation import Cluster
from tests.support.server import Account, RunningServer

H1, H2 = "hs1.localhost", "hs2.localhost"
SEND = "/_matrix/federation/v1/send/"


async def _remote_join(hs1: RunningServer, hs2: RunningServer, room_id: str, user_id: str) -> str:
    """``user_id`` of hs1 joins hs2's room: a join event signed by hs1, received by hs2's graph.

    (Set-up only: the join handshake itself is make_join/send_join, tested elsewhere.)
    """
    services = hs2.hs.services
    with hs2.hs.database.activated():
        state = {(e.type, e.state_key or ""): e for e in await services.rooms.room_state_events(room_id)}
        latest = await services.rooms.events.get(
            (await hs2.api("GET", f"rooms/{room_id}/messages", _OWNER[room_id],
                           params={"dir": "b", "limit": "1"})).json()["chunk"][0]["event_id"])
        assert latest is not None
        version = state[("m.room.create", "")].content.get("room_version", "1")
        auth = [state[k].event_id for k in (("m.room.create", ""), ("m.room.join_rules", ""),
                                            ("m.room.power_levels", ""))]
        key = hs1.hs.signing_key
        event_id, pdu = build_pdu(EventSpec("m.room.member", user_id, {"membership": "join"}, user_id), room_id,
                                  [latest.event_id], auth, int(latest.pdu["depth"]) + 1,
                                  hs1.hs.services.clock.now_ms(), H1, key.version, key.private_key, version)
        incoming = IncomingEvents(services.rooms.events, services.notifier, services.clock,
                                  hs2.hs.federation.keyring.lookup)
        received = await incoming.receive(version, pdu)
    assert received.status == "accepted", received
    return event_id


_OWNER: dict[str, Account] = {}


async def _sync(server: RunningServer, account: Account, since: str | None, want: Any) -> dict[str, Any]:
    """Long-poll /sync until ``want(body)`` holds; return that body."""
    while True:
        params = {"timeout": "10000" if since else "0", **({"since": since} if since else {})}
        body = (await server.api("GET", "sync", account, params=params)).json()
        if since is not None and want(body):
            return body
        since = body["next_batch"]


def _ephemeral(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    room = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return [e for e in room.get("ephemeral", {}).get("events", []) if e["type"] == event_type]


async def test_typing_and_receipts_from_a_member_server(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    bob = await hs2.register("bob")
    created = await hs2.api("POST", "createRoom", bob, json={"preset": "public_chat"})
    room_id = created.json()["room_id"]
    _OWNER[room_id] = bob
    alice = f"@alice:{H1}"
    await _remote_join(hs1, hs2, room_id, alice)
    sent = await hs2.api("PUT", f"rooms/{room_id}/send/m.room.message/t1", bob, json={"msgtype": "m.text",
                                                                                        "body": "hi"})
    message_id = sent.json()["event_id"]
    first = (await hs2.api("GET", "sync", bob, params={"timeout": "0"})).json()
    client = hs1.hs.federation.client
    edus = [
        {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": alice, "typing": True}},
        # A user of hs1 who is not in the room, and a user of hs2 that hs1 cannot speak for.
        {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": f"@carol:{H1}", "typing": True}},
        {"edu_type": "m.typing", "content": {"room_id": room_id, "user_id": f"@mallory:{H2}", "typing": True}},
        {"edu_type": "m.receipt", "content": {room_id: {"m.read": {
            alice: {"event_ids": [message_id], "data": {"ts": 1}}}}}},
    ]
    with hs1.hs.database.activated():
        await client.request(H2, "PUT", SEND + "edus1", json={"origin": H1, "origin_server_ts": 1, "pdus": [],
                                                               "edus": edus})
    body = await _sync(hs2, bob, first["next_batch"],
                       lambda b: _ephemeral(b, room_id, "m.typing") and _ephemeral(b, room_id, "m.receipt"))
    assert _ephemeral(body, room_id, "m.typing")[0]["content"]["user_ids"] == [alice]
    receipt = _ephemeral(body, room_id, "m.receipt")[0]["content"]
    assert alice in receipt[message_id]["m.read"]

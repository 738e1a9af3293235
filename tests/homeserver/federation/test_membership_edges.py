"""Membership details across real TLS servers: the whole auth chain in ``send_join`` answers, an invite
not repeated over ``/send``, and a remote invite declined here when the inviter's server is gone."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

from homeserver.services.events import compute_event_id, reference_ids
from homeserver.services.room_versions import ROOM_VERSIONS
from tests.homeserver.federation.test_joins import create_room, sync_rooms
from tests.support.federation import Cluster, cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


async def test_send_join_answers_the_whole_auth_chain(pair: Cluster) -> None:
    """The spec's ``auth_chain`` is that of the whole state: state events in it are not left out
    (SyTest's "Inbound federation can receive v1 /send_join" needs it non-empty)."""
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, room_version="10")
    version = ROOM_VERSIONS["10"]
    with hs2.hs.database.activated():
        template = await hs2.hs.federation.client.request(
            H1, "GET", f"/_matrix/federation/v1/make_join/{quote(room_id)}/{quote(bob.user_id)}",
            query={"ver": ["10"]})
        _, event = await hs2.hs.federation_rooms.remote._make(H1, "join", room_id, bob.user_id, None)
        event_id = compute_event_id(event, version)
        answer = await hs2.hs.federation.client.request(
            H1, "PUT", f"/_matrix/federation/v2/send_join/{quote(room_id)}/{quote(event_id)}", json=event)
    assert template["room_version"] == "10"
    chain = {compute_event_id(e, version) for e in answer["auth_chain"]}
    state = {compute_event_id(e, version): e for e in answer["state"]}
    create = [i for i, e in state.items() if e["type"] == "m.room.create"]
    assert create and create[0] in chain
    for pdu in state.values():
        assert set(reference_ids(pdu["auth_events"])) <= chain


class Recorder:
    """ASGI middleware keeping the PDUs of every ``/send`` the server receives."""

    def __init__(self) -> None:
        self.pdus: list[dict[str, Any]] = []
        self.changed = asyncio.Condition()

    def __call__(self, app: Any) -> Any:
        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http" or not scope["path"].startswith("/_matrix/federation/v1/send/"):
                await app(scope, receive, send)
                return
            chunks: list[bytes] = []
            more = True
            while more:
                message = await receive()
                chunks.append(message.get("body", b""))
                more = message.get("more_body", False)
            body = b"".join(chunks)
            async with self.changed:
                self.pdus += json.loads(body).get("pdus", [])
                self.changed.notify_all()
            replayed = False

            async def replay() -> dict[str, Any]:
                nonlocal replayed
                if replayed:
                    return await receive()
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}

            await app(scope, replay, send)
        return asgi


async def test_an_invite_is_not_repeated_over_send(tmp_path: Path) -> None:
    """The invitee's server got the invite by /invite and is not in the room: /send brings it only
    what changes the membership later (here the revoked invite)."""
    recorder = Recorder()
    async with cluster(tmp_path, 2, start=False) as servers:
        hs1 = await servers.start(H1)
        hs2 = await servers.start(H2, wrap=recorder)
        alice, bob = await hs1.register("alice"), await hs2.register("bob")
        room_id = await create_room(hs1, alice, preset="private_chat")
        invited = await hs1.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": bob.user_id})
        assert invited.status_code == 200, invited.text
        kicked = await hs1.api("POST", f"rooms/{room_id}/kick", alice, json={"user_id": bob.user_id})
        assert kicked.status_code == 200, kicked.text

        def members() -> list[str]:
            return [p["content"]["membership"] for p in recorder.pdus
                    if p.get("room_id") == room_id and p.get("type") == "m.room.member"]

        async with recorder.changed:
            await asyncio.wait_for(recorder.changed.wait_for(lambda: "leave" in members()), 60)
        assert members() == ["leave"]


async def test_a_remote_invite_is_declined_here_when_the_inviter_is_gone(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as servers:
        hs1, hs2 = servers.running[H1], servers.running[H2]
        alice, bob = await hs1.register("alice"), await hs2.register("bob")
        room_id = await create_room(hs1, alice, preset="private_chat")
        invited = await hs1.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": bob.user_id})
        assert invited.status_code == 200, invited.text
        before = await hs2.api("GET", "sync", bob)
        assert room_id in before.json()["rooms"]["invite"]
        await servers.stop(H1)
        declined = await hs2.api("POST", f"rooms/{room_id}/leave", bob, json={})
        assert declined.status_code == 200, declined.text
        after = await hs2.api("GET", "sync", bob, params={"since": before.json()["next_batch"]})
        rooms = after.json()["rooms"]
        assert room_id not in rooms.get("invite", {})
        [leave] = rooms["leave"][room_id]["timeline"]["events"]
        assert (leave["type"], leave["state_key"], leave["sender"], leave["content"]["membership"]) == (
            "m.room.member", bob.user_id, bob.user_id, "leave")
        assert room_id not in (await sync_rooms(hs2, bob)).get("invite", {})

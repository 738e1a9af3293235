"""Refusals across real TLS servers: a denied server's invite is refused by the ACL before anything is
looked up, a make_join refusal keeps the room version the remote named, and an invite answered with an
event that is not canonical JSON fails (and is revoked).  A remote's odd answers come from an ASGI
layer in front of a real Parley."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from starlette.responses import Response

from homeserver.federation.errors import RemoteError
from homeserver.services.events import compute_event_id, hash_and_sign
from homeserver.services.room_versions import ROOM_VERSIONS
from tests.homeserver.federation.test_joins import create_room
from tests.support.federation import cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


class Answering:
    """ASGI middleware: ``method`` requests to paths starting with ``prefix`` get ``status`` and ``body``
    (raw JSON text, so it may hold what canonical JSON cannot)."""

    def __init__(self, method: str, prefix: str, status: int, body: str) -> None:
        self.method, self.prefix, self.status, self.body = method, prefix, status, body

    def __call__(self, app: Any) -> Any:
        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["method"] == self.method and scope["path"].startswith(self.prefix):
                more = True
                while more:  # read the body first: an HTTP/2 stream answered early is reset
                    more = (await receive()).get("more_body", False)
                await Response(self.body, self.status, media_type="application/json")(scope, receive, send)
                return
            await app(scope, receive, send)
        return asgi


async def test_a_denied_servers_invite_is_refused_before_the_user_is_looked_up(tmp_path: Path) -> None:
    async with cluster(tmp_path, 2) as servers:
        hs1, hs2 = servers.running[H1], servers.running[H2]
        alice = await hs1.register("alice")
        room_id = await create_room(hs1, alice, room_version="10", initial_state=[
            {"type": "m.room.server_acl", "state_key": "", "content": {"allow": ["*"], "deny": [H2]}}])
        key = hs2.hs.signing_key
        invite = hash_and_sign({"type": "m.room.member", "state_key": f"@nobody:{H1}", "sender": f"@eve:{H2}",
                                "room_id": room_id, "content": {"membership": "invite"}, "depth": 5,
                                "origin_server_ts": 1, "prev_events": [], "auth_events": []},
                               H2, key.version, key.private_key, "10")
        event_id = compute_event_id(invite, ROOM_VERSIONS["10"])
        with hs2.hs.database.activated(), pytest.raises(RemoteError) as refused:
            await hs2.hs.federation.client.request(
                H1, "PUT", f"/_matrix/federation/v2/invite/{quote(room_id)}/{quote(event_id)}",
                json={"room_version": "10", "event": invite, "invite_room_state": []})
        assert (refused.value.remote_status, refused.value.errcode) == (403, "M_FORBIDDEN")


async def test_a_make_join_refusal_keeps_the_room_version(tmp_path: Path) -> None:
    refusal = json.dumps({"errcode": "M_INCOMPATIBLE_ROOM_VERSION", "error": "y u no upgrade",
                          "room_version": "some-future-version"})
    async with cluster(tmp_path, 2, start=False) as servers:
        await servers.start(H1, wrap=Answering("GET", "/_matrix/federation/v1/make_join/", 400, refusal))
        hs2 = await servers.start(H2)
        bob = await hs2.register("bob")
        joined = await hs2.api("POST", f"join/!future:{H1}", bob, json={})
        assert joined.status_code == 400, joined.text
        assert joined.json()["errcode"] == "M_INCOMPATIBLE_ROOM_VERSION"
        assert joined.json()["room_version"] == "some-future-version"


async def test_an_invite_answered_with_a_float_fails_and_is_revoked(tmp_path: Path) -> None:
    answer = ('{"event": {"type": "m.room.member", "content": {"membership": "invite", "n": 1.5}, '
              '"signatures": {}}}')
    async with cluster(tmp_path, 2, start=False) as servers:
        hs1 = await servers.start(H1)
        await servers.start(H2, wrap=Answering("PUT", "/_matrix/federation/v2/invite/", 200, answer))
        alice = await hs1.register("alice")
        room_id = await create_room(hs1, alice, room_version="10", preset="private_chat")
        invited = await hs1.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": f"@bob:{H2}"})
        assert invited.status_code == 400, invited.text
        assert invited.json()["errcode"] == "M_BAD_JSON"
        member = await hs1.api("GET", f"rooms/{room_id}/state/m.room.member/@bob:{H2}", alice)
        assert member.json()["membership"] == "leave"

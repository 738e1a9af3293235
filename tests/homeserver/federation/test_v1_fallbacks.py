"""Servers without the v2 membership endpoints: joins and invites fall back to the deprecated v1 forms
(spec: servers should prefer v2; a v1 invite implies room version 1 or 2), and knocks use
``/v1/send_knock``, the only one there is.  The older server is a real Parley behind an ASGI layer
that answers 404 to the v2 path, as SyTest's federation server does."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.responses import JSONResponse, Response

from tests.homeserver.federation.test_joins import create_room, joined_members
from tests.support.federation import cluster

H1, H2 = "hs1.localhost", "hs2.localhost"
ASGI = Callable[[dict[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]], Awaitable[None]]


class WithoutV2:
    """ASGI middleware: ``PUT`` of paths starting with ``prefix`` answer 404 (``errcode`` or no body);
    every federation request is recorded."""

    def __init__(self, prefix: str, errcode: str | None) -> None:
        self.prefix, self.errcode = prefix, errcode
        self.seen: list[str] = []

    def __call__(self, app: ASGI) -> ASGI:
        async def asgi(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] == "http" and scope["path"].startswith("/_matrix/federation/"):
                self.seen.append(f"{scope['method']} {scope['path']}")
                if scope["method"] == "PUT" and scope["path"].startswith(self.prefix):
                    more = True
                    while more:  # read the body first: an HTTP/2 stream answered early is reset
                        more = (await receive()).get("more_body", False)
                    answer: Response = (JSONResponse({"errcode": self.errcode, "error": "Unrecognized request"},
                                                     404) if self.errcode else Response(b"", 404))
                    await answer(scope, receive, send)
                    return
            await app(scope, receive, send)
        return asgi

    def calls(self, prefix: str) -> list[str]:
        return [s for s in self.seen if s.startswith(prefix)]


async def test_a_join_through_a_server_without_v2_send_join_uses_v1(tmp_path: Path) -> None:
    old = WithoutV2("/_matrix/federation/v2/send_join/", None)  # a bare 404, as SyTest's server answers
    async with cluster(tmp_path, 2, start=False) as servers:
        hs1 = await servers.start(H1, wrap=old)
        hs2 = await servers.start(H2)
        alice, bob = await hs1.register("alice"), await hs2.register("bob")
        room_id = await create_room(hs1, alice, name="Old server")
        joined = await hs2.api("POST", f"join/{room_id}", bob, params={"server_name": H1}, json={})
        assert joined.status_code == 200, joined.text
        assert len(old.calls("PUT /_matrix/federation/v2/send_join/")) == 1
        assert len(old.calls("PUT /_matrix/federation/v1/send_join/")) == 1
        assert await joined_members(hs1, alice, room_id) == {alice.user_id, bob.user_id}
        assert await joined_members(hs2, bob, room_id) == {alice.user_id, bob.user_id}


async def test_a_missing_room_is_not_retried_with_v1(tmp_path: Path) -> None:
    """A 404 with a Matrix error other than M_UNRECOGNIZED is the endpoint's answer, not a missing endpoint."""
    watch = WithoutV2("/nothing-is-refused", None)
    async with cluster(tmp_path, 2, start=False) as servers:
        await servers.start(H1, wrap=watch)
        hs2 = await servers.start(H2)
        bob = await hs2.register("bob")
        unknown = await hs2.api("POST", f"join/!nowhere:{H1}", bob, json={})
        assert unknown.status_code == 404 and unknown.json()["errcode"] == "M_NOT_FOUND", unknown.text
        assert watch.calls("PUT /_matrix/federation/v1/") == []


async def test_an_invite_to_a_server_without_v2_invite_uses_v1_in_v2_rooms_only(tmp_path: Path) -> None:
    old = WithoutV2("/_matrix/federation/v2/invite/", "M_UNRECOGNIZED")
    async with cluster(tmp_path, 2, start=False) as servers:
        hs1 = await servers.start(H1)
        hs2 = await servers.start(H2, wrap=old)
        alice, bob = await hs1.register("alice"), await hs2.register("bob")
        room_v2 = await create_room(hs1, alice, room_version="2", preset="private_chat")
        invited = await hs1.api("POST", f"rooms/{room_v2}/invite", alice, json={"user_id": bob.user_id})
        assert invited.status_code == 200, invited.text
        assert len(old.calls("PUT /_matrix/federation/v1/invite/")) == 1
        sync = await hs2.api("GET", "sync", bob, params={"timeout": "0"})
        assert room_v2 in sync.json()["rooms"]["invite"], sync.text
        # A v1 invite says nothing of the room version, which the spec then takes as 1 or 2:
        # for a v10 room there is no fallback, and the inviter gets a clear error.
        room_v10 = await create_room(hs1, alice, room_version="10", preset="private_chat")
        refused = await hs1.api("POST", f"rooms/{room_v10}/invite", alice, json={"user_id": bob.user_id})
        assert refused.status_code == 404, refused.text
        assert "did not accept the invite" in refused.json()["error"]
        assert len(old.calls("PUT /_matrix/federation/v1/invite/")) == 1
        members = await hs1.api("GET", f"rooms/{room_v10}/state/m.room.member/{bob.user_id}", alice)
        assert members.json()["membership"] == "leave"  # the refused invite was revoked


async def test_a_knock_goes_to_v1_send_knock(tmp_path: Path) -> None:
    watch = WithoutV2("/nothing-is-refused", None)
    async with cluster(tmp_path, 2, start=False) as servers:
        hs1 = await servers.start(H1, wrap=watch)
        hs2 = await servers.start(H2)
        alice, bob = await hs1.register("alice"), await hs2.register("bob")
        room_id = await create_room(hs1, alice, room_version="10", preset="private_chat",
                                    initial_state=[{"type": "m.room.join_rules", "state_key": "",
                                                    "content": {"join_rule": "knock"}}])
        with hs2.hs.database.activated():
            answer = await hs2.hs.federation_rooms.remote.knock(bob.user_id, room_id, [H1], "let me in")
        assert answer["event"]["content"] == {"membership": "knock", "reason": "let me in"}
        assert len(watch.calls("PUT /_matrix/federation/v1/send_knock/")) == 1
        member = await hs1.api("GET", f"rooms/{room_id}/state/m.room.member/{bob.user_id}", alice)
        assert member.status_code == 200, member.text
        assert member.json()["membership"] == "knock"

"""Guest access: off by default; when enabled, guests get an account and a token limited
to the spec's guest endpoints, and join only rooms that allow guests."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from tests.homeserver.room_helpers import create_room
from tests.support.server import Account, RunningServer, serve_homeserver


async def test_guests_are_refused_by_default(server: RunningServer) -> None:
    response = await server.api("POST", "register", params={"kind": "guest"}, json={})
    assert response.status_code == 403 and response.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"


async def test_guest_account_and_its_limits(make_config: Any) -> None:
    async with serve_homeserver(make_config(registration={"allow_guests": True})) as server:
        response = await server.api("POST", "register", params={"kind": "guest"}, json={})
        assert response.status_code == 200, response.text
        body = response.json()
        guest = Account(body["user_id"], body["device_id"], body["access_token"], "")
        assert (await server.api("GET", "account/whoami", guest)).json()["user_id"] == guest.user_id
        assert (await server.api("GET", "sync", guest, params={"timeout": 0})).status_code == 200

        alice = await server.register()
        open_room = await create_room(server, alice, preset="public_chat")
        await server.api("PUT", f"rooms/{quote(open_room)}/state/m.room.guest_access", alice,
                         json={"guest_access": "can_join"})
        closed_room = await create_room(server, alice, preset="public_chat")
        refused = await server.api("POST", f"join/{quote(closed_room)}", guest, json={})
        assert refused.status_code == 403 and refused.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"
        assert (await server.api("POST", f"join/{quote(open_room)}", guest, json={})).status_code == 200
        sent = await server.api("PUT", f"rooms/{quote(open_room)}/send/m.room.message/g1", guest,
                                json={"msgtype": "m.text", "body": "hi from a guest"})
        assert sent.status_code == 200, sent.text

        for method, path, json_body in (
            ("POST", "createRoom", {}),
            ("PUT", f"rooms/{quote(open_room)}/send/m.reaction/g2", {}),
            ("PUT", f"rooms/{quote(open_room)}/state/m.room.topic", {"topic": "x"}),
            ("GET", "pushers", None),
            ("POST", "account/password", {"new_password": "whatever long"}),
        ):
            response = await server.api(method, path, guest, json=json_body)
            assert response.status_code == 403, (method, path)
            assert response.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN", (method, path)
        # No password: a guest cannot log in again.
        login = await server.api("POST", "login", json={"type": "m.login.password", "password": "",
                                                        "identifier": {"type": "m.id.user", "user": guest.user_id}})
        assert login.status_code == 403


async def test_guests_leave_when_guest_access_is_revoked(make_config: Any) -> None:
    """Spec, Guest Access, server behaviour: when m.room.guest_access stops being can_join, the
    server MUST set the guests' membership to leave.  Members who are not guests stay."""
    async with serve_homeserver(make_config(registration={"allow_guests": True})) as server:
        registered = (await server.api("POST", "register", params={"kind": "guest"}, json={})).json()
        guest = Account(registered["user_id"], registered["device_id"], registered["access_token"], "")
        alice, bob = await server.register(), await server.register()
        room = quote(await create_room(server, alice, preset="public_chat"))
        await server.api("PUT", f"rooms/{room}/state/m.room.guest_access", alice, json={"guest_access": "can_join"})
        for member in (guest, bob):
            assert (await server.api("POST", f"join/{room}", member, json={})).status_code == 200
        # Another state change keeps the guest in.
        await server.api("PUT", f"rooms/{room}/state/m.room.topic", alice, json={"topic": "still open"})
        joined = await server.api("GET", f"rooms/{room}/joined_members", alice)
        assert set(joined.json()["joined"]) == {alice.user_id, bob.user_id, guest.user_id}

        revoked = await server.api("PUT", f"rooms/{room}/state/m.room.guest_access", alice,
                                   json={"guest_access": "forbidden"})
        assert revoked.status_code == 200, revoked.text
        joined = await server.api("GET", f"rooms/{room}/joined_members", alice)
        assert set(joined.json()["joined"]) == {alice.user_id, bob.user_id}
        member = await server.api("GET", f"rooms/{room}/state/m.room.member/{quote(guest.user_id)}", alice)
        assert member.json()["membership"] == "leave"
        refused = await server.api("POST", f"join/{room}", guest, json={})
        assert refused.status_code == 403 and refused.json()["errcode"] == "M_GUEST_ACCESS_FORBIDDEN"

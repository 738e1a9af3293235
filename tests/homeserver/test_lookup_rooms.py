"""Placeholders and rooms: invitations survive registration, a placeholder has no device to
send to, and placeholders in a real conversation are not cleaned up."""

from __future__ import annotations

import secrets
from typing import Any

from homeserver.services.clock import ManualClock
from tests.homeserver.test_lookup import email_config, lookup, new_email, query_keys, register_with_email
from tests.homeserver.test_media_rooms import make_room
from tests.support.server import RunningServer, serve_homeserver
from tests.support.smtp import SmtpSink

DAY_MS = 24 * 3600 * 1000


async def count_to_device(server: RunningServer, user_id: str) -> int:
    with server.hs.database.activated():
        row = await server.hs.database.fetch_one(
            "SELECT COUNT(*) AS n FROM to_device_messages WHERE user_id = ?", [user_id])
    assert row is not None
    return int(row["n"])


async def test_invitation_survives_registration_and_nothing_is_sent_to_server_keys(
        make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(**email_config(smtp_sink))) as server:
        alice = await server.register()
        email = new_email()
        placeholder = (await lookup(server, alice, email)).json()["user_id"]
        room_id = await make_room(server, alice, name="Waiting for you")
        response = await server.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": placeholder})
        assert response.status_code == 200, response.text
        # There is no device to encrypt to: Alice's client has to wait for Bob's own devices.
        assert await query_keys(server, alice, placeholder) == {}
        response = await server.api("PUT", f"sendToDevice/m.room.encrypted/{secrets.token_hex(4)}", alice, json={
            "messages": {placeholder: {"*": {"algorithm": "im.parley.x3dh.v1", "ciphertext": "opaque"}}}})
        assert response.status_code == 200, response.text
        assert await count_to_device(server, placeholder) == 0

        account = await register_with_email(server, smtp_sink, email)
        assert account.user_id != placeholder  # the name the person chose; the lookup id is an alias
        assert await count_to_device(server, placeholder) == 0
        assert await count_to_device(server, account.user_id) == 0
        response = await server.api("GET", "sync", account, params={"timeout": 0})
        assert response.status_code == 200, response.text
        body = response.json()
        assert room_id in body.get("rooms", {}).get("invite", {})
        assert body.get("to_device", {}).get("events", []) == []
        response = await server.api("POST", f"rooms/{room_id}/join", account, json={})
        assert response.status_code == 200, response.text
        members = await server.api("GET", f"rooms/{room_id}/joined_members", alice)
        assert account.user_id in members.json()["joined"] and placeholder not in members.json()["joined"]
        # Alice invited the placeholder; the account's invitation is hers too (handed over).
        state = await server.api("GET", f"rooms/{room_id}/state/m.room.member/{placeholder}", alice)
        assert state.json()["membership"] == "leave"


async def test_placeholders_in_a_real_conversation_are_kept(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        invited_email = new_email()
        invited = (await lookup(server, alice, invited_email)).json()["user_id"]
        lonely = (await lookup(server, alice, new_email())).json()["user_id"]
        room_id = await make_room(server, alice)
        assert (await server.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": invited})).status_code == 200
        clock.advance(31 * DAY_MS)
        service = server.hs.services.placeholders

        async def cleanup() -> int:
            with server.hs.database.activated():
                removed: int = await service.cleanup()
            return removed

        assert await cleanup() == 1
        assert (await server.api("GET", f"profile/{lonely}", alice)).status_code == 404
        assert (await server.api("GET", f"profile/{invited}", alice)).status_code == 200
        # Once no real user is left in the room, the conversation is over.
        assert (await server.api("POST", f"rooms/{room_id}/leave", alice, json={})).status_code == 200
        assert await cleanup() == 1
        assert (await server.api("GET", f"profile/{invited}", alice)).status_code == 404
        # Its invitation went with it: a placeholder re-created for the same
        # address (same id) starts with no memberships at all.
        with server.hs.database.activated():
            assert await server.hs.services.rooms.repo.memberships_of_user(invited) == []
        bob = await server.register()
        again = await server.api("POST", "/_matrix/client/unstable/im.parley/lookup/email", bob,
                                 json={"email": invited_email})
        assert again.json()["user_id"] == invited
        with server.hs.database.activated():
            assert await server.hs.services.rooms.repo.memberships_of_user(invited) == []

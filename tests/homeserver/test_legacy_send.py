"""Request forms Synapse serves and SyTest and old clients use: the legacy POST forms without a
transaction id (``POST /rooms/{roomId}/send/{eventType}``, ``POST /rooms/{roomId}/redact/{eventId}``;
the current spec has only the PUT forms with a ``txnId``; each POST is a new event), and join
requests carrying member content."""

from __future__ import annotations

from tests.homeserver.room_helpers import create_room, expect_error, sync, timeline
from tests.support.server import RunningServer

WHOLE_TIMELINE = '{"room": {"timeline": {"limit": 50}}}'


async def test_post_send_and_post_redact(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    content = {"msgtype": "m.text", "body": "posted"}
    first = await server.api("POST", f"rooms/{room}/send/m.room.message", alice, json=content)
    again = await server.api("POST", f"rooms/{room}/send/m.room.message", alice, json=content)
    assert first.status_code == 200 and again.status_code == 200, (first.text, again.text)
    assert first.json()["event_id"] != again.json()["event_id"]

    redacted = await server.api("POST", f"rooms/{room}/redact/{first.json()['event_id']}", alice,
                                json={"reason": "oops"})
    assert redacted.status_code == 200, redacted.text
    events = {e["event_id"]: e for e in timeline(await sync(server, alice, filter=WHOLE_TIMELINE), room)}
    assert events[first.json()["event_id"]]["content"] == {}
    assert events[again.json()["event_id"]]["content"] == content
    redaction = events[redacted.json()["event_id"]]
    assert redaction["type"] == "m.room.redaction" and redaction["content"]["reason"] == "oops"

    # The same checks as the PUT forms.
    await expect_error(await server.api("POST", f"rooms/{room}/send/m.room.member", alice, json={}),
                       400, "M_INVALID_PARAM")
    await expect_error(await server.api("POST", f"rooms/{room}/send/m.room.message", alice, content=b"[]"),
                       400, "M_BAD_JSON")
    stranger = await server.register()
    await expect_error(await server.api("POST", f"rooms/{room}/send/m.room.message", stranger, json=content),
                       403, "M_FORBIDDEN")


async def test_join_keeps_the_reason_and_custom_member_content(server: RunningServer) -> None:
    """POST /join and /rooms/{id}/join: ``reason`` (spec) and a client's own fields end up in the
    member event, as Synapse keeps them; ``membership`` cannot be overridden."""
    alice, bob, carol = await server.register(), await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat", room_alias_name="custom")
    joined = await server.api("POST", f"join/{room}", bob,
                              json={"reason": "hello", "foo": "bar", "membership": "ban"})
    assert joined.status_code == 200, joined.text
    alias = f"%23custom:{server.config.server_name}"
    assert (await server.api("POST", f"join/{alias}", carol, json={"foo": "baz"})).status_code == 200
    for account, foo in ((bob, "bar"), (carol, "baz")):
        member = await server.api("GET", f"rooms/{room}/state/m.room.member/{account.user_id}", alice)
        assert member.json()["membership"] == "join" and member.json()["foo"] == foo
    bob_member = await server.api("GET", f"rooms/{room}/state/m.room.member/{bob.user_id}", alice)
    assert bob_member.json()["reason"] == "hello"
    await expect_error(await server.api("POST", f"rooms/{room}/join", carol, json={"reason": 5}),
                       400, "M_INVALID_PARAM")

"""The legacy POST forms without a transaction id, ``POST /rooms/{roomId}/send/{eventType}`` and
``POST /rooms/{roomId}/redact/{eventId}``: not in the current spec (which has only the PUT forms
with a ``txnId``), but served by Synapse and used by old bots and SyTest.  Each POST is a new
event (there is no transaction id to make it idempotent)."""

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

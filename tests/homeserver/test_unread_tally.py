"""Notification counts extended build by build (push_counts.py's running tally):
each later /sync evaluates only the new events, and whatever the tally cannot
explain (a redaction of an older unread event, a receipt, new power levels)
is counted again from the unread events."""

from __future__ import annotations

from typing import Any

from tests.homeserver.test_receipts_helpers import create_room, q, send_text, sync
from tests.support.server import RunningServer


def counts(body: dict[str, Any], room_id: str) -> tuple[int, int]:
    value = body["rooms"]["join"][room_id]["unread_notifications"]
    return int(value["notification_count"]), int(value["highlight_count"])


async def test_counts_follow_new_events_redactions_power_levels_and_receipts(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room_id = await create_room(server, alice, bob)
    since = (await sync(server, bob))["next_batch"]
    tallied = server.hs.services.notifications.counter.tallied
    sent = []
    for i in range(4):
        sent.append(await send_text(server, alice, room_id, f"message {i}"))
        body = await sync(server, bob, since)
        since = body["next_batch"]
        assert counts(body, room_id) == (i + 1, 0)
    assert tallied["extended"] >= 3  # each later build added its one new event
    recounted = tallied["recounted"]

    # An older unread event redacted: the tally cannot explain the new count; recounted.
    redacted = await server.api("PUT", f"rooms/{q(room_id)}/redact/{q(sent[1])}/r1", alice, json={})
    assert redacted.status_code == 200, redacted.text
    body = await sync(server, bob, since)
    since = body["next_batch"]
    assert counts(body, room_id) == (3, 0)
    assert tallied["recounted"] == recounted + 1

    # @room from the room's creator highlights; it is added to the tally.
    await send_text(server, alice, room_id, "@room hello everyone")
    body = await sync(server, bob, since)
    since = body["next_batch"]
    assert counts(body, room_id) == (4, 1)

    # New power levels: Alice lowers herself below @room's level; every unread event is evaluated again.
    levels = await server.api("GET", f"rooms/{q(room_id)}/state/m.room.power_levels", alice)
    old = levels.json()
    content = {**old, "users": {**old.get("users", {}), alice.user_id: 40}, "notifications": {"room": 50}}
    changed = await server.api("PUT", f"rooms/{q(room_id)}/state/m.room.power_levels", alice, json=content)
    assert changed.status_code == 200, changed.text
    body = await sync(server, bob, since)
    since = body["next_batch"]
    assert counts(body, room_id) == (4, 0)
    assert tallied["recounted"] == recounted + 2

    # A receipt on the newest: nothing unread; a new message counts one again.
    latest = await send_text(server, alice, room_id, "latest")
    body = await sync(server, bob, since)
    since = body["next_batch"]
    assert counts(body, room_id) == (5, 0)
    read = await server.api("POST", f"rooms/{q(room_id)}/receipt/m.read/{q(latest)}", bob, json={})
    assert read.status_code == 200, read.text
    body = await sync(server, bob, since)
    since = body["next_batch"]
    assert counts(body, room_id) == (0, 0)
    await send_text(server, alice, room_id, "after reading")
    body = await sync(server, bob, since)
    assert counts(body, room_id) == (1, 0)
    # A sync from scratch agrees.
    assert counts(await sync(server, bob), room_id) == (1, 0)

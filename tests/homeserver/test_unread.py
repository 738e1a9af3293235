"""Unread counts (``unread_notifications``) in /sync, right for a user who was offline."""

from __future__ import annotations

from typing import Any

from tests.homeserver.test_receipts_helpers import create_room, q, send_text, sync, unread
from tests.support.server import RunningServer


async def test_unread_counts_after_being_offline(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await create_room(server, alice, bob)
    bob_initial = await sync(server, bob)
    assert unread(bob_initial, room_id) == 0

    # Bob stops syncing; Alice sends three messages.
    events = [await send_text(server, alice, room_id, f"m{i}") for i in range(3)]

    # Bob comes back: both an initial and an incremental sync show 3.
    assert unread(await sync(server, bob), room_id) == 3
    incremental = await sync(server, bob, bob_initial["next_batch"])
    assert unread(incremental, room_id) == 3
    # Alice's own messages are not unread for her.
    assert unread(await sync(server, alice), room_id) == 0

    # Reading the first leaves two.
    read_first = await server.api(
        "POST", f"rooms/{q(room_id)}/receipt/m.read/{q(events[0])}", bob, json={}
    )
    assert read_first.status_code == 200
    after_first = await sync(server, bob, incremental["next_batch"])
    assert unread(after_first, room_id) == 2

    # A receipt on the last one: 0, in the incremental sync that carries the
    # receipt and in any later initial sync.
    await server.api("POST", f"rooms/{q(room_id)}/receipt/m.read/{q(events[-1])}", bob, json={})
    after_last = await sync(server, bob, after_first["next_batch"])
    assert unread(after_last, room_id) == 0
    assert unread(await sync(server, bob), room_id) == 0

    # A new message counts again; a private receipt clears it too.
    newest = await send_text(server, alice, room_id, "again")
    later = await sync(server, bob, after_last["next_batch"])
    assert unread(later, room_id) == 1
    await server.api(
        "POST", f"rooms/{q(room_id)}/receipt/m.read.private/{q(newest)}", bob, json={}
    )
    assert unread(await sync(server, bob, later["next_batch"]), room_id) == 0


async def test_unread_counts_per_room_and_since_joining(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    carol = await server.register()
    first_room = await create_room(server, alice, bob)
    second_room = await create_room(server, alice, bob)
    for i in range(2):
        await send_text(server, alice, first_room, f"a{i}")
    for i in range(5):
        await send_text(server, alice, second_room, f"b{i}")
    # Bob's own messages don't count; they don't reset his count either.
    await send_text(server, bob, second_room, "mine")

    # Carol joins later: what was said before she joined is not unread for her.
    invite = await server.api("POST", f"rooms/{q(first_room)}/invite", alice, json={"user_id": carol.user_id})
    assert invite.status_code == 200, invite.text
    assert (await server.api("POST", f"rooms/{q(first_room)}/join", carol, json={})).status_code == 200
    await send_text(server, alice, first_room, "welcome")

    bob_sync = await sync(server, bob)
    assert unread(bob_sync, first_room) == 3
    assert unread(bob_sync, second_room) == 5
    carol_sync = await sync(server, carol)
    assert unread(carol_sync, first_room) == 1
    # Alice sees Carol's join but no message from others: 0.
    assert unread(await sync(server, alice), first_room) == 0

    # Every joined room of an initial sync carries the counts, even quiet ones.
    quiet_room = await create_room(server, bob)
    assert unread(await sync(server, bob), quiet_room) == 0


async def test_remembered_counts_follow_rules_display_names_and_new_events(server: RunningServer) -> None:
    # Counts are evaluated once per event and remembered (push_counts.py): every input of
    # the push rules is part of what is remembered, so changes still show in the next sync.
    alice, bob = await server.register(), await server.register()
    room_id = await create_room(server, alice, bob)
    for i in range(3):
        await send_text(server, alice, room_id, f"hello Robert {i}")

    def counts(body: dict[str, Any]) -> dict[str, int]:
        value: dict[str, int] = body["rooms"]["join"][room_id]["unread_notifications"]
        return value

    assert counts(await sync(server, bob)) == {"notification_count": 3, "highlight_count": 0}
    assert counts(await sync(server, bob)) == {"notification_count": 3, "highlight_count": 0}
    # Bob's display name now matches the messages: .m.rule.contains_display_name highlights them.
    renamed = await server.api("PUT", f"profile/{q(bob.user_id)}/displayname", bob, json={"displayname": "Robert"})
    assert renamed.status_code == 200, renamed.text
    assert counts(await sync(server, bob)) == {"notification_count": 3, "highlight_count": 3}
    # Bob turns the display-name and message rules off: nothing notifies any more.
    for kind, rule in (("override", ".m.rule.contains_display_name"), ("underride", ".m.rule.room_one_to_one"),
                       ("underride", ".m.rule.message")):
        off = await server.api("PUT", f"pushrules/global/{kind}/{rule}/enabled", bob, json={"enabled": False})
        assert off.status_code == 200, off.text
    assert counts(await sync(server, bob)) == {"notification_count": 0, "highlight_count": 0}
    # And back on; a new event is evaluated too.
    for kind, rule in (("underride", ".m.rule.room_one_to_one"), ("underride", ".m.rule.message")):
        await server.api("PUT", f"pushrules/global/{kind}/{rule}/enabled", bob, json={"enabled": True})
    await send_text(server, alice, room_id, "one more")
    assert counts(await sync(server, bob)) == {"notification_count": 4, "highlight_count": 0}

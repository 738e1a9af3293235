"""matrix-nio, a real Matrix client, sets typing, receipts, read markers, presence,
tags and filters against the server and sees them in its own /sync, without a
validation error."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

import nio

from tests.support.server import RunningServer


def _ok(response: Any, kind: type) -> Any:
    assert isinstance(response, kind), response
    return response


async def _client(server: RunningServer, name: str) -> nio.AsyncClient:
    client = nio.AsyncClient(server.base_url, name)
    _ok(await client.register(name, "nio password 123", device_name=name), nio.RegisterResponse)
    return client


async def test_nio_typing_receipts_presence(server: RunningServer) -> None:
    suffix = secrets.token_hex(3)
    alice = await _client(server, f"nio-alice-{suffix}")
    bob = await _client(server, f"nio-bob-{suffix}")
    try:
        created = _ok(await alice.room_create(name="chat", invite=[bob.user_id]), nio.RoomCreateResponse)
        room_id = created.room_id
        _ok(await bob.join(room_id), nio.JoinResponse)
        first = _ok(await alice.sync(timeout=0, full_state=True), nio.SyncResponse)
        bob_first = _ok(await bob.sync(timeout=0, full_state=True), nio.SyncResponse)
        assert room_id in bob_first.rooms.join
        assert bob_first.rooms.join[room_id].unread_notifications.notification_count == 0

        sent = _ok(
            await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": "hello"}),
            nio.RoomSendResponse,
        )

        # Presence, typing and receipts through nio's own calls.
        _ok(await alice.set_presence("online", "writing tests"), nio.PresenceSetResponse)
        _ok(await alice.room_typing(room_id, True, timeout=30_000), nio.RoomTypingResponse)
        _ok(await bob.update_receipt_marker(room_id, sent.event_id), nio.UpdateReceiptMarkerResponse)
        _ok(
            await bob.room_read_markers(room_id, sent.event_id, sent.event_id),
            nio.RoomReadMarkersResponse,
        )
        presence = _ok(await bob.get_presence(alice.user_id), nio.PresenceGetResponse)
        assert presence.presence == "online"
        assert presence.status_msg == "writing tests"

        # Bob's sync: nio parses every part without error.
        bob_next = _ok(await bob.sync(timeout=5_000, since=bob_first.next_batch), nio.SyncResponse)
        joined = bob_next.rooms.join[room_id]
        typing = [e for e in joined.ephemeral if isinstance(e, nio.TypingNoticeEvent)]
        assert typing and typing[-1].users == [alice.user_id]
        receipts = [r for e in joined.ephemeral if isinstance(e, nio.ReceiptEvent) for r in e.receipts]
        assert any(r.user_id == bob.user_id and r.event_id == sent.event_id for r in receipts)
        assert any(isinstance(e, nio.FullyReadEvent) and e.event_id == sent.event_id
                   for e in joined.account_data)
        assert joined.unread_notifications.notification_count == 0
        seen = {e.user_id: e for e in bob_next.presence_events if isinstance(e, nio.PresenceEvent)}
        assert seen[alice.user_id].presence == "online"
        assert seen[alice.user_id].status_msg == "writing tests"
        assert bob.rooms[room_id].typing_users == [alice.user_id]

        # Alice sees Bob's receipt, and stops typing.
        _ok(await alice.room_typing(room_id, False), nio.RoomTypingResponse)
        alice_next = _ok(await alice.sync(timeout=5_000, since=first.next_batch), nio.SyncResponse)
        alice_room = alice_next.rooms.join[room_id]
        receipts = [r for e in alice_room.ephemeral if isinstance(e, nio.ReceiptEvent) for r in e.receipts]
        assert any(r.user_id == bob.user_id and r.receipt_type == "m.read" for r in receipts)
        typing = [e for e in alice_room.ephemeral if isinstance(e, nio.TypingNoticeEvent)]
        assert typing and typing[-1].users == []

        # A filter uploaded by nio works for its sync; tags come back as TagEvent.
        uploaded = _ok(
            await bob.upload_filter(room={"timeline": {"limit": 1}}, presence={"types": ["m.presence"]}),
            nio.UploadFilterResponse,
        )
        # Favourites (m.favourite) set over plain HTTP come back to nio as a TagEvent.
        tagged = await server.client.put(
            f"/_matrix/client/v3/user/{quote(bob.user_id, safe='')}/rooms/{quote(room_id, safe='')}"
            "/tags/m.favourite",
            json={"order": 0.5},
            headers={"Authorization": f"Bearer {bob.access_token}"},
        )
        assert tagged.status_code == 200, tagged.text
        filtered = _ok(
            await bob.sync(timeout=0, sync_filter=uploaded.filter_id, full_state=True), nio.SyncResponse
        )
        filtered_room = filtered.rooms.join[room_id]
        assert len(filtered_room.timeline.events) == 1
        tags = [e for e in filtered_room.account_data if isinstance(e, nio.TagEvent)]
        assert tags and tags[-1].tags == {"m.favourite": {"order": 0.5}}
    finally:
        await alice.close()
        await bob.close()

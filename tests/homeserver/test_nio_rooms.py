"""matrix-nio as a real client: create, invite, join, send, sync, paginate, redact, leave."""

from __future__ import annotations

import logging

import pytest
from nio import (
    AsyncClient,
    JoinResponse,
    RoomCreateResponse,
    RoomForgetResponse,
    RoomInviteResponse,
    RoomLeaveResponse,
    RoomMessagesResponse,
    RoomMessageText,
    RoomPreset,
    RoomRedactResponse,
    RoomSendResponse,
    SyncResponse,
)

from tests.support.server import Account, RunningServer


def _client(server: RunningServer, account: Account) -> AsyncClient:
    client = AsyncClient(server.base_url, account.user_id, device_id=account.device_id)
    client.access_token = account.access_token
    client.user_id = account.user_id
    return client


async def test_nio_room_lifecycle(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING)
    alice_account = await server.register()
    bob_account = await server.register()
    alice = _client(server, alice_account)
    bob = _client(server, bob_account)
    try:
        created = await alice.room_create(name="nio group", preset=RoomPreset.private_chat)
        assert isinstance(created, RoomCreateResponse), created
        room_id = created.room_id
        invited = await alice.room_invite(room_id, bob_account.user_id)
        assert isinstance(invited, RoomInviteResponse), invited

        first = await bob.sync(timeout=0)
        assert isinstance(first, SyncResponse), first
        assert room_id in first.rooms.invite
        joined = await bob.join(room_id)
        assert isinstance(joined, JoinResponse), joined

        for i in range(15):
            sent = await alice.room_send(room_id, "m.room.message", {"msgtype": "m.text", "body": f"hello {i}"})
            assert isinstance(sent, RoomSendResponse), sent

        update = await bob.sync(timeout=5000, since=first.next_batch)
        assert isinstance(update, SyncResponse), update
        room = bob.rooms[room_id]
        assert room.display_name == "nio group"
        assert set(room.users) == {alice_account.user_id, bob_account.user_id}
        timeline = update.rooms.join[room_id].timeline
        texts = [e.body for e in timeline.events if isinstance(e, RoomMessageText)]
        assert texts[-1] == "hello 14"

        # Paginate backwards from the timeline's prev_batch to the room's start.
        token = timeline.prev_batch
        older: list[str] = []
        while True:
            page = await bob.room_messages(room_id, start=token, limit=4)
            assert isinstance(page, RoomMessagesResponse), page
            older += [e.body for e in page.chunk if isinstance(e, RoomMessageText)]
            if not page.chunk or page.end is None or page.end == token:
                break
            token = page.end
        assert set(texts) | set(older) == {f"hello {i}" for i in range(15)}

        redacted = await alice.room_redact(room_id, sent.event_id, reason="typo")
        assert isinstance(redacted, RoomRedactResponse), redacted
        after_redact = await bob.sync(timeout=5000, since=update.next_batch)
        assert isinstance(after_redact, SyncResponse), after_redact

        left = await bob.room_leave(room_id)
        assert isinstance(left, RoomLeaveResponse), left
        final = await bob.sync(timeout=5000, since=after_redact.next_batch)
        assert isinstance(final, SyncResponse), final
        assert room_id in final.rooms.leave
        forgot = await bob.room_forget(room_id)
        assert isinstance(forgot, RoomForgetResponse), forgot

        dm = await alice.room_create(is_direct=True, invite=[bob_account.user_id],
                                     preset=RoomPreset.trusted_private_chat)
        assert isinstance(dm, RoomCreateResponse), dm
        dm_sync = await bob.sync(timeout=5000, since=final.next_batch)
        assert isinstance(dm_sync, SyncResponse), dm_sync
        assert dm.room_id in dm_sync.rooms.join
    finally:
        await alice.close()
        await bob.close()
    problems = [r.getMessage() for r in caplog.records if r.name.startswith("nio")]
    assert problems == [], problems

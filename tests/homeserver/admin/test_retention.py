"""Data lifecycle: room history retention (m.room.retention) and media retention by last access."""

from __future__ import annotations

from typing import Any

from homeserver.services.clock import ManualClock
from tests.homeserver.admin.helpers import A1, SECRET, expect, register_with_secret
from tests.homeserver.room_helpers import create_room, send_text
from tests.homeserver.test_media_support import DOWNLOAD, media_path, upload_ok
from tests.support.server import RunningServer, serve_homeserver

DAY = 86_400_000


async def _bodies(server: RunningServer, account: Any, room: str) -> list[str]:
    chunk = expect(await server.api("GET", f"rooms/{room}/messages", account,
                                    params={"dir": "b", "limit": 100}))["chunk"]
    return [e["content"].get("body") for e in chunk if e["type"] == "m.room.message"]


async def test_room_retention_purges_old_messages_keeping_state(make_config: Any) -> None:
    clock = ManualClock()
    config = make_config(admin={"retention_enabled": True})
    async with serve_homeserver(config, clock=clock) as server:
        alice = await server.register("alice")
        kept_room = await create_room(server, alice, name="Keeps history")
        room = await create_room(server, alice, name="Forgets")
        expect(await server.api("PUT", f"rooms/{room}/state/m.room.retention", alice,
                                json={"max_lifetime": 2 * DAY}))
        uri = await upload_ok(server, alice, b"old attachment")
        old = await send_text(server, alice, room, "old message")
        expect(await server.api("POST", "/_matrix/client/unstable/im.parley/media/attach", alice, json={
            "room_id": room, "event_id": old, "media_ids": [uri.rsplit("/", 1)[1]]}))
        await send_text(server, alice, kept_room, "old but kept")
        clock.advance(3 * DAY)
        await send_text(server, alice, room, "new message")
        await send_text(server, alice, room, "newest message")
        with server.hs.database.activated():
            deleted = await server.hs.services.admin.retention.purge_expired()
        assert deleted == 1
        assert await _bodies(server, alice, room) == ["newest message", "new message"]
        assert await _bodies(server, alice, kept_room) == ["old but kept"]
        name = expect(await server.api("GET", f"rooms/{room}/state/m.room.name", alice))
        assert name == {"name": "Forgets"}
        expect(await server.api("GET", f"rooms/{room}/event/{old}", alice), 404, "M_NOT_FOUND")
        download = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=alice.headers)
        expect(download, 404, "M_NOT_FOUND")
        # The room still works after the purge.
        await send_text(server, alice, room, "still works")


async def test_default_retention_applies_to_rooms_without_a_policy(make_config: Any) -> None:
    clock = ManualClock()
    config = make_config(admin={"retention_enabled": True, "retention_default_max_lifetime_days": 1})
    async with serve_homeserver(config, clock=clock) as server:
        alice = await server.register("alice")
        room = await create_room(server, alice)
        await send_text(server, alice, room, "first")
        await send_text(server, alice, room, "second")
        clock.advance(2 * DAY)
        await send_text(server, alice, room, "third")
        with server.hs.database.activated():
            assert await server.hs.services.admin.retention.purge_expired() == 2
        assert await _bodies(server, alice, room) == ["third"]


async def test_retention_is_off_by_default(server: RunningServer) -> None:
    with server.hs.database.activated():
        assert await server.hs.services.admin.retention.purge_expired() == 0


async def test_media_retention_by_last_access(make_config: Any) -> None:
    clock = ManualClock()
    config = make_config(admin={"media_retention_local_days": 30},
                         registration={"open": True, "require_email": False, "shared_secret": SECRET})
    async with serve_homeserver(config, clock=clock) as server:
        admin = await register_with_secret(server, "root", "admin password 1", admin=True)
        alice = await server.register("alice")
        stale = await upload_ok(server, alice, b"nobody reads this")
        popular = await upload_ok(server, alice, b"read every week")
        clock.advance(20 * DAY)
        assert (await server.client.get(f"{DOWNLOAD}/{media_path(popular)}", headers=alice.headers)).status_code == 200
        listed = expect(await server.api("GET", f"{A1}/users/{alice.user_id}/media", admin))
        accessed = {m["media_id"]: m["last_access_ts"] for m in listed["media"]}
        assert accessed[popular.rsplit("/", 1)[1]] == clock.now_ms()
        assert accessed[stale.rsplit("/", 1)[1]] is None
        clock.advance(15 * DAY)
        with server.hs.database.activated():
            deleted = await server.hs.services.admin.media.apply_retention(30)
        assert deleted == [stale.rsplit("/", 1)[1]]
        expect(await server.client.get(f"{DOWNLOAD}/{media_path(stale)}", headers=alice.headers), 404)
        assert (await server.client.get(f"{DOWNLOAD}/{media_path(popular)}", headers=alice.headers)).status_code == 200

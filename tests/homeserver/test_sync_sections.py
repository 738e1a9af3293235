"""/sync's knock and leave sections, and memberships committed while a response is being built.

A knock is news: a long-poll answers it at once with the room in
``rooms.knock``.  A room left after more events than the timeline limit
shows the last events up to the leave, ``limited``.  A response covers the
stream positions read before any data: a join committed after them belongs
to the next response, never to this one (the room shows as it was at the
token, or not at all), and rooms listed after it are not lost.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

from tests.homeserver.room_helpers import bodies, create_room, send_text, sync
from tests.support.server import RunningServer


async def _wait_for_waiter(server: RunningServer, user_id: str) -> None:
    notifier = server.hs.services.notifier
    for _ in range(1000):
        if user_id in notifier._waiters and notifier.pending_waiters == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the long-poll never started waiting")


async def test_a_knock_answers_a_long_poll_at_once(server: RunningServer) -> None:
    alice, carol = await server.register(), await server.register()
    room = await create_room(server, alice, initial_state=[
        {"type": "m.room.join_rules", "content": {"join_rule": "knock"}}])
    since = (await sync(server, carol))["next_batch"]
    timeout_ms = 20000
    poll = asyncio.create_task(sync(server, carol, since=since, timeout=timeout_ms))
    await _wait_for_waiter(server, carol.user_id)
    knocked = await server.api("POST", f"knock/{room}", carol, json={"reason": "let me in"})
    assert knocked.status_code == 200, knocked.text
    # The knock is news for carol: the long-poll answers it, not its timeout.
    body = await asyncio.wait_for(poll, timeout_ms / 2 / 1000)
    assert room not in body["rooms"]["join"]
    state = body["rooms"]["knock"][room]["knock_state"]["events"]
    own = [e for e in state if e["type"] == "m.room.member" and e["state_key"] == carol.user_id]
    assert len(own) == 1 and own[0]["content"]["membership"] == "knock"
    assert own[0]["content"]["reason"] == "let me in"
    assert {(e["type"], e["state_key"]) for e in state} >= {("m.room.create", ""), ("m.room.join_rules", "")}


async def test_a_room_left_after_many_events_shows_the_last_ones_limited(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, invite=[bob.user_id])
    assert (await server.api("POST", f"rooms/{room}/join", bob, json={})).status_code == 200
    flt = json.dumps({"room": {"timeline": {"limit": 2}}})
    since = (await sync(server, bob, filter=flt))["next_batch"]
    for n in range(5):
        await send_text(server, alice, room, f"m{n}")
    assert (await server.api("POST", f"rooms/{room}/leave", bob, json={})).status_code == 200
    await send_text(server, alice, room, "after bob left")
    left = (await sync(server, bob, since=since, filter=flt))["rooms"]["leave"][room]
    events = left["timeline"]["events"]
    assert left["timeline"]["limited"] is True
    assert bodies(events) == ["m4"]
    assert len(events) == 2
    assert events[-1]["type"] == "m.room.member" and events[-1]["state_key"] == bob.user_id
    assert events[-1]["content"]["membership"] == "leave"
    # Paging back from the timeline's start reaches the earlier messages.
    back = await server.api("GET", f"rooms/{room}/messages", bob,
                            params={"from": left["timeline"]["prev_batch"], "dir": "b", "limit": 10})
    assert back.status_code == 200, back.text
    assert "m3" in bodies(back.json()["chunk"])


class _GatedStreams:
    """The sync service's view of the stream positions: ``during`` runs once, right after
    the next /sync has read them (other services keep reading the repository itself)."""

    def __init__(self, real: Any, during: Callable[[], Awaitable[None]]) -> None:
        self.real, self.during, self.done = real, during, asyncio.Event()

    async def current_all(self) -> dict[str, int]:
        positions: dict[str, int] = await self.real.current_all()
        if not self.done.is_set():
            self.done.set()
            await self.during()
        return positions

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


async def test_memberships_committed_after_the_positions_wait_for_the_next_sync(server: RunningServer) -> None:
    alice, carol = await server.register(), await server.register()
    earlier = [await create_room(server, alice, preset="public_chat") for _ in range(3)]
    for room in earlier:
        assert (await server.api("POST", f"rooms/{room}/join", carol, json={})).status_code == 200
    public = await create_room(server, alice, preset="public_chat")
    invited = await create_room(server, alice, invite=[carol.user_id])
    later = [await create_room(server, alice, preset="public_chat") for _ in range(2)]

    async def joins() -> None:
        for room in (public, invited, *later):
            assert (await server.api("POST", f"rooms/{room}/join", carol, json={})).status_code == 200

    service = server.hs.services.sync
    gated = _GatedStreams(service.streams, joins)
    service.streams = gated  # type: ignore[assignment]
    try:
        body = await sync(server, carol)
    finally:
        service.streams = gated.real
    assert gated.done.is_set()
    # This response is as of the positions read first: the joins come after them.
    assert set(body["rooms"]["join"]) == set(earlier)
    assert set(body["rooms"]["invite"]) == {invited}
    assert public not in body["rooms"]["leave"] and not set(later) & set(body["rooms"]["invite"])
    # The next sync has them, each once.
    after = await sync(server, carol, since=body["next_batch"])
    assert set(after["rooms"]["join"]) == {public, invited, *later}
    assert after["rooms"]["invite"] == {}


async def test_the_summary_comes_with_membership_changes_only(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    assert (await server.api("POST", f"join/{room}", bob, json={})).status_code == 200
    since = (await sync(server, alice))["next_batch"]
    message = await send_text(server, alice, room, "react to this")
    reaction = {"m.relates_to": {"rel_type": "m.annotation", "event_id": message, "key": "+1"}}
    assert (await server.api("PUT", f"rooms/{room}/send/m.reaction/r1", bob, json=reaction)).status_code == 200
    avatar = await server.api("PUT", f"rooms/{room}/state/m.room.avatar", alice, json={"url": "mxc://hs/avatar"})
    assert avatar.status_code == 200, avatar.text
    quiet = await sync(server, alice, since=since)
    section = quiet["rooms"]["join"][room]
    assert {e["type"] for e in section["timeline"]["events"]} == {"m.room.message", "m.reaction", "m.room.avatar"}
    # Nothing the summary counts changed: it is left out (the client keeps the last one).
    assert "summary" not in section
    assert (await server.api("POST", f"rooms/{room}/leave", bob, json={})).status_code == 200
    changed = await sync(server, alice, since=quiet["next_batch"])
    assert changed["rooms"]["join"][room]["summary"]["m.joined_member_count"] == 1


async def test_lazy_members_hold_no_membership_committed_after_the_positions(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    assert (await server.api("POST", f"join/{room}", bob, json={})).status_code == 200
    lazy = json.dumps({"room": {"state": {"lazy_load_members": True}, "timeline": {"limit": 10}}})
    since = (await sync(server, alice, filter=lazy))["next_batch"]
    await send_text(server, bob, room, "hello")

    async def rename() -> None:
        response = await server.api("PUT", f"profile/{bob.user_id}/displayname", bob, json={"displayname": "Bobby"})
        assert response.status_code == 200, response.text

    service = server.hs.services.sync
    gated = _GatedStreams(service.streams, rename)
    service.streams = gated  # type: ignore[assignment]
    try:
        body = await sync(server, alice, since=since, filter=lazy)
    finally:
        service.streams = gated.real
    assert gated.done.is_set()
    # The renaming came after this response's positions: it is the next response's news, once.
    section = body["rooms"]["join"][room]
    assert bodies(section["timeline"]["events"]) == ["hello"]
    seen = section["state"]["events"] + section["timeline"]["events"]
    assert not [e for e in seen if e["type"] == "m.room.member" and e["content"].get("displayname") == "Bobby"]
    after = await sync(server, alice, since=body["next_batch"], filter=lazy)
    renamed = [e for e in after["rooms"]["join"][room]["timeline"]["events"] if e["type"] == "m.room.member"]
    assert [e["content"].get("displayname") for e in renamed] == ["Bobby"]

"""History visibility boundaries (security): what a joining member may read of the past,
in /sync, /messages and /event, and world-readable rooms for non-members."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.homeserver.room_helpers import bodies, create_room, send_text, sync, timeline
from tests.support.server import RunningServer


async def _room_with_history(server: RunningServer, visibility: str) -> tuple[str, dict[str, str], object, object]:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, preset="private_chat")
    put = await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", alice,
                           json={"history_visibility": visibility})
    assert put.status_code == 200, put.text
    ids = {"before": await send_text(server, alice, room, "before")}
    await server.api("POST", f"rooms/{quote(room)}/invite", alice, json={"user_id": bob.user_id})
    ids["invited"] = await send_text(server, alice, room, "invited")
    joined = await server.api("POST", f"join/{quote(room)}", bob, json={})
    assert joined.status_code == 200
    ids["after"] = await send_text(server, alice, room, "after")
    return room, ids, alice, bob


@pytest.mark.parametrize(("visibility", "seen"), [
    ("joined", ["after"]),
    ("invited", ["invited", "after"]),
    ("shared", ["before", "invited", "after"]),
])
async def test_joining_member_sees_only_what_visibility_allows(
    server: RunningServer, visibility: str, seen: list[str]
) -> None:
    room, ids, _, bob = await _room_with_history(server, visibility)
    initial = await sync(server, bob, filter='{"room": {"timeline": {"limit": 50}}}')  # type: ignore[arg-type]
    assert bodies(timeline(initial, room)) == seen

    messages = await server.api("GET", f"rooms/{quote(room)}/messages", bob, params={"dir": "b", "limit": 50})
    assert messages.status_code == 200
    assert list(reversed(bodies(messages.json()["chunk"]))) == seen

    for name, event_id in ids.items():
        response = await server.api("GET", f"rooms/{quote(room)}/event/{quote(event_id)}", bob)
        assert response.status_code == (200 if name in seen else 404), (visibility, name)
        context = await server.api("GET", f"rooms/{quote(room)}/context/{quote(event_id)}", bob)
        assert (context.status_code == 200) == (name in seen), (visibility, name, context.text)


async def test_world_readable_rooms_are_readable_by_non_members(server: RunningServer) -> None:
    alice = await server.register()
    stranger = await server.register()
    room = await create_room(server, alice, preset="public_chat", name="Open book")
    await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", alice,
                     json={"history_visibility": "world_readable"})
    event_id = await send_text(server, alice, room, "for everyone")
    messages = await server.api("GET", f"rooms/{quote(room)}/messages", stranger, params={"dir": "b"})
    assert messages.status_code == 200
    assert "for everyone" in bodies(messages.json()["chunk"])
    assert (await server.api("GET", f"rooms/{quote(room)}/state/m.room.name", stranger)).json() == {"name": "Open book"}
    assert (await server.api("GET", f"rooms/{quote(room)}/event/{quote(event_id)}", stranger)).status_code == 200
    # Back to shared: non-members are refused again.
    await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", alice,
                     json={"history_visibility": "shared"})
    refused = await server.api("GET", f"rooms/{quote(room)}/messages", stranger, params={"dir": "b"})
    assert refused.status_code == 403


async def test_non_members_read_a_world_readable_room_only_from_when_it_became_so(server: RunningServer) -> None:
    """Spec: world_readable opens the events sent *while* the value is world_readable.
    The message sent before (under shared: members only) stays hidden from a stranger
    in /messages, /event, /context and /rooms/{id}/initialSync."""
    alice, stranger = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    private = await send_text(server, alice, room, "private")
    await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", alice,
                     json={"history_visibility": "world_readable"})
    public = await send_text(server, alice, room, "public")

    messages = await server.api("GET", f"rooms/{quote(room)}/messages", stranger, params={"dir": "b", "limit": 50})
    assert messages.status_code == 200
    chunk = messages.json()["chunk"]
    assert bodies(chunk) == ["public"]
    # The change itself is visible: the value after it allows it.
    assert [e["type"] for e in chunk] == ["m.room.message", "m.room.history_visibility"]
    assert (await server.api("GET", f"rooms/{quote(room)}/event/{quote(private)}", stranger)).status_code == 404
    assert (await server.api("GET", f"rooms/{quote(room)}/context/{quote(private)}", stranger)).status_code in (403, 404)
    assert (await server.api("GET", f"rooms/{quote(room)}/event/{quote(public)}", stranger)).status_code == 200
    initial = await server.api("GET", f"rooms/{quote(room)}/initialSync", stranger)
    assert initial.status_code == 200, initial.text
    assert bodies(initial.json()["messages"]["chunk"]) == ["public"]
    # Members still read everything the room's setting gave them.
    mine = await server.api("GET", f"rooms/{quote(room)}/messages", alice, params={"dir": "b", "limit": 50})
    assert bodies(mine.json()["chunk"]) == ["public", "private"]


async def test_context_in_a_room_one_may_not_read_is_forbidden(server: RunningServer) -> None:
    alice, mallory = await server.register(), await server.register()
    room = await create_room(server, alice)
    event_id = await send_text(server, alice, room, "not for mallory")
    refused = await server.api("GET", f"rooms/{quote(room)}/context/{quote(event_id)}", mallory)
    assert refused.status_code == 403 and refused.json()["errcode"] == "M_FORBIDDEN", refused.text
    missing = await server.api("GET", f"rooms/{quote(room)}/context/{quote('$nope')}", alice)
    assert missing.status_code == 404, missing.text


async def test_each_event_keeps_the_visibility_it_was_sent_under(server: RunningServer) -> None:
    """A room that was ``joined``, then ``invited``, then ``shared``: a newcomer sees the
    ``shared`` history, but not the message sent while the room was ``joined`` nor the one
    sent while it was ``invited`` (they were neither then) — in /sync, /messages,
    /context and /event.  A visibility change is visible if the value before or after
    it allows it: the change *to* ``shared`` is, the one *to* ``invited`` is not."""
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    ids = {}
    for visibility, text in (("joined", "1"), ("invited", "2"), ("shared", "3")):
        changed = await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", alice,
                                   json={"history_visibility": visibility})
        assert changed.status_code == 200, changed.text
        ids[visibility] = changed.json()["event_id"]
        ids[text] = await send_text(server, alice, room, text)
    assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 200
    events = timeline(await sync(server, bob), room)
    tail = [(e["type"], e["content"].get("history_visibility") or e["content"].get("body")
             or e["content"].get("membership")) for e in events[-4:]]
    assert tail == [("m.room.history_visibility", "joined"), ("m.room.history_visibility", "shared"),
                    ("m.room.message", "3"), ("m.room.member", "join")]
    page = await server.api("GET", f"rooms/{quote(room)}/messages", bob, params={"dir": "b", "limit": 50})
    assert bodies(page.json()["chunk"]) == ["3"]
    for hidden in ("1", "2", "invited"):
        got = await server.api("GET", f"rooms/{quote(room)}/event/{quote(ids[hidden])}", bob)
        assert got.status_code == 404, (hidden, got.text)
    context = await server.api("GET", f"rooms/{quote(room)}/context/{quote(ids['3'])}", bob, params={"limit": 20})
    around = context.json()["events_before"] + context.json()["events_after"]
    assert not {"1", "2"} & set(bodies(around))
    # Alice, joined throughout, sees everything.
    assert {"1", "2", "3"} <= set(bodies((await server.api(
        "GET", f"rooms/{quote(room)}/messages", alice, params={"dir": "b", "limit": 50})).json()["chunk"]))


@pytest.mark.parametrize("visibility", ["invited", "joined"])
async def test_what_was_shared_stays_readable_after_the_room_closed_its_history(
        server: RunningServer, visibility: str) -> None:
    """A message sent while the room was ``shared`` is readable by a later joiner even
    after the room turned ``invited``/``joined``; the one sent after the change is not."""
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    await send_text(server, alice, room, "shared")
    changed = await server.api("PUT", f"rooms/{quote(room)}/state/m.room.history_visibility", alice,
                               json={"history_visibility": visibility})
    assert changed.status_code == 200, changed.text
    await send_text(server, alice, room, "pre_join")
    assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 200
    await send_text(server, alice, room, "post_join")
    events = timeline(await sync(server, bob), room)[-4:]
    assert [(e["type"], e["content"].get("body")) for e in events] == [
        ("m.room.message", "shared"), ("m.room.history_visibility", None), ("m.room.member", None),
        ("m.room.message", "post_join")]

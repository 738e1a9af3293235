"""Edits (m.replace) and reactions (m.annotation) between two real clients on a real server."""

from __future__ import annotations

import pytest

from client_tk.core import relations
from client_tk.core.client import ChatClient
from client_tk.core.events import ClientEvent, Message, MessageChanged
from common.errors import MatrixError
from tests.client.conftest import MakeClient, until
from tests.client.test_features_messages import _dm, joined_group
from tests.support.server import RunningServer


def shown(client: ChatClient, event_id: str) -> Message | None:
    cached = client.store.get_message(event_id)
    return None if cached is None else Message.from_dict(cached)


@pytest.mark.parametrize("kind", ["group", "dm"])
async def test_edit_own_message(server: RunningServer, new_user: MakeClient, kind: str) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room = await (joined_group(alice, bob) if kind == "group" else _dm(alice, bob))
    changed: list[ClientEvent] = []
    bob.bus.subscribe(lambda e: changed.append(e) if isinstance(e, MessageChanged) else None)
    original = await alice.send_text(room, "meet at 5")
    await until(lambda: shown(bob, original) is not None, what="bob has the message")

    edit = await alice.edit_message(room, original, "meet at 6")
    for reader in (alice, bob):
        await until(lambda r=reader: (m := shown(r, original)) is not None  # type: ignore[misc]
                    and m.body == "meet at 6" and m.edited, what="the edit is shown")
    await until(lambda: any(isinstance(e, MessageChanged) and e.message.event_id == original
                            and e.message.body == "meet at 6" for e in changed), what="the view is told")
    # the edit is not a message of its own, and the newest edit wins
    assert [m.body for m in bob.messages(room)] == ["meet at 6"]
    await alice.edit_message(room, original, "meet at 7")
    await until(lambda: (m := shown(bob, original)) is not None and m.body == "meet at 7", what="second edit")
    assert bob.search(room, "at 7")[0].event_id == original and not bob.search(room, "at 5")

    # As Matrix has it: the relation in clear (the server relates it), the new text encrypted.
    raw = await bob.http.get(f"/_matrix/client/v3/rooms/{room}/event/{edit}")
    assert raw["type"] == "m.room.encrypted"
    assert raw["content"]["m.relates_to"] == {"rel_type": "m.replace", "event_id": original}
    assert "m.new_content" not in raw["content"] and "meet" not in str(raw["content"])
    related = await bob.http.get(f"/_matrix/client/v1/rooms/{room}/relations/{original}/m.replace")
    assert edit in [e["event_id"] for e in related["chunk"]]

    # Only one's own messages: the client refuses, and a forged edit is ignored by the reader.
    with pytest.raises(MatrixError) as refused:
        await bob.edit_message(room, original, "hijacked")
    assert refused.value.status == 403
    await bob.send_payload(room, relations.edit_payload(original, "hijacked"))
    marker = await bob.send_text(room, "after the forgery")
    await until(lambda: shown(alice, marker) is not None, what="alice read past the forgery")
    assert shown(alice, original).body == "meet at 7"  # type: ignore[union-attr]

    # Deleting the last edit shows the one before.
    edits = (await alice.http.get(f"/_matrix/client/v1/rooms/{room}/relations/{original}/m.replace"))["chunk"]
    await alice.delete_message(room, next(e["event_id"] for e in edits if e["sender"] == alice.user_id))
    await until(lambda: (m := shown(bob, original)) is not None and m.body == "meet at 6",
                what="the previous edit is back")


async def test_bad_edits_are_refused(server: RunningServer, new_user: MakeClient) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    room = await _dm(alice, bob)
    mine = await alice.send_text(room, "text")
    for text, code in (("   ", 400), ("x" * 40_000, 413)):
        with pytest.raises(MatrixError) as refused:
            await alice.edit_message(room, mine, text)
        assert refused.value.status == code
    with pytest.raises(MatrixError) as refused:
        await alice.edit_message(room, "$not-cached", "x")
    assert refused.value.status == 404
    with pytest.raises(MatrixError) as refused:
        await alice.edit_message(room, "no id", "x")
    assert refused.value.status == 400
    assert [m.body for m in alice.messages(room)] == ["text"]


async def test_reactions_aggregate_and_go_away(server: RunningServer, new_user: MakeClient) -> None:
    alice, bob, carol = await new_user("alice"), await new_user("bob"), await new_user("carol")
    room = await joined_group(alice, bob, carol)
    target = await alice.send_text(room, "lunch?")
    await until(lambda: all(shown(c, target) for c in (bob, carol)), what="everyone has it")

    reaction = await bob.react(room, target, "👍")
    await carol.react(room, target, "👍")
    await carol.react(room, target, "🍕")
    assert await carol.react(room, target, "🍕") is None  # once per key
    want = (("👍", tuple(sorted((bob.user_id, carol.user_id)))), ("🍕", (carol.user_id,)))
    for reader in (alice, bob, carol):
        await until(lambda r=reader: shown(r, target).reactions == want,  # type: ignore[misc,union-attr]
                    what="reactions aggregated")
    raw = await alice.http.get(f"/_matrix/client/v3/rooms/{room}/event/{reaction}")
    assert raw["content"]["m.relates_to"] == {"rel_type": "m.annotation", "event_id": target, "key": "👍"}
    assert [m.body for m in alice.messages(room)] == ["lunch?"]  # reactions are not messages

    assert await bob.unreact(room, target, "👍") == 1
    want = (("👍", (carol.user_id,)), ("🍕", (carol.user_id,)))
    await until(lambda: shown(alice, target).reactions == want, what="bob's reaction removed")  # type: ignore[union-attr]

    await alice.delete_message(room, target)  # deleting the message takes its reactions along
    await until(lambda: all(shown(c, target).redacted for c in (bob, carol)),  # type: ignore[union-attr]
                what="deleted")
    assert shown(carol, target).reactions == ()  # type: ignore[union-attr]
    with pytest.raises(MatrixError):
        await bob.react(room, target, "👍")
    with pytest.raises(MatrixError) as refused:
        await bob.react(room, await alice.send_text(room, "again"), "x" * 100)
    assert refused.value.status == 400

"""Invitations (decline, accept), leaving, renaming, destroying a group, the group picture."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from client_tk.core.client import ChatClient
from client_tk.core.events import InvitationReceived, RoomUpdated
from common.errors import MatrixError
from tests.client.conftest import MakeClient, bodies, until
from tests.support.server import RunningServer


def png(colour: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(out, "PNG")
    return out.getvalue()


async def media_bytes(client: ChatClient, uri: str) -> bytes:
    server_name, media_id = uri.removeprefix("mxc://").split("/", 1)
    chunks: list[bytes] = []
    await client.http.download(f"/_matrix/client/v1/media/download/{server_name}/{media_id}", chunks.append)
    return b"".join(chunks)


async def test_invitations_leave_rename_avatar_destroy(server: RunningServer, new_user: MakeClient) -> None:
    alice, bob, carol = await new_user("alice"), await new_user("bob"), await new_user("carol")
    invites = bob.bus.queue()
    events = carol.bus.queue()

    # Bob declines the first invitation: it is gone from his list, Alice sees him leave.
    declined = await alice.create_group("Declined group", [bob.user_id])
    await until(lambda: declined in {r.room_id for r in bob.invitations()}, what="bob is invited")
    first = await invites.get()
    while not isinstance(first, InvitationReceived):
        first = await invites.get()
    assert (first.room_id, first.inviter, first.name) == (declined, alice.user_id, "Declined group")
    await bob.decline(declined)
    await until(lambda: declined not in {r.room_id for r in bob.invitations()}, what="invitation gone")
    await until(lambda: alice.rooms[declined].members.get(bob.user_id) == "leave", what="alice sees the decline")
    assert declined not in {r.room_id for r in bob.room_list()}
    with pytest.raises(MatrixError):
        await bob.send_text(declined, "not a member")

    # Bob and Carol accept the second one.
    room = await alice.create_group("Weekend", [bob.user_id, carol.user_id])
    for member in (bob, carol):
        await until(lambda m=member: room in {r.room_id for r in m.invitations()}, what="invited")  # type: ignore[misc]
        await member.accept(room)
        assert room in {r.room_id for r in member.room_list()}
        assert room not in {r.room_id for r in member.invitations()}
    await until(lambda: set(alice.rooms[room].joined) == {alice.user_id, bob.user_id, carol.user_id},
                what="three members")
    await alice.send_text(room, "welcome both")
    await until(lambda: "welcome both" in bodies(bob, room) and "welcome both" in bodies(carol, room),
                what="both read")

    # Only the creator renames; a member gets a clear error.
    with pytest.raises(MatrixError) as refused:
        await bob.rename(room, "Bob's weekend")
    assert refused.value.status == 403
    assert "creator" in refused.value.message, refused.value.message
    await alice.rename(room, "Long weekend")
    await until(lambda: bob.rooms[room].name == "Long weekend" and carol.rooms[room].name == "Long weekend",
                what="members see the new name")
    with pytest.raises(MatrixError):
        await alice.rename(room, "")

    # The group picture: set by the creator, seen by members, the same bytes come back.
    picture = png((200, 30, 30))
    uri = await alice.set_group_avatar(room, picture, "image/png")
    await until(lambda: bob.rooms[room].avatar_url == uri, what="bob sees the picture")
    assert await media_bytes(bob, uri) == picture
    with pytest.raises(MatrixError) as refused:
        await carol.set_group_avatar(room, png((0, 0, 0)), "image/png")
    assert "creator" in refused.value.message, refused.value.message
    await until(lambda: any(isinstance(e, RoomUpdated) and e.room_id == room and e.avatar_url == uri
                            for e in _drain(events)) or carol.rooms[room].avatar_url == uri,
                what="carol's UI is told")

    # Carol leaves: the others see it, she no longer lists the group and cannot send to it.
    await carol.leave(room)
    await until(lambda: alice.rooms[room].members.get(carol.user_id) == "leave", what="alice sees carol leave")
    await until(lambda: carol.rooms[room].membership == "leave", what="carol left")
    assert room not in {r.room_id for r in carol.room_list()}
    with pytest.raises(MatrixError):
        await carol.send_text(room, "after leaving")

    # A member cannot destroy; the creator can, and the group disappears for everyone.
    with pytest.raises(MatrixError) as refused:
        await bob.destroy_group(room)
    assert refused.value.status == 403
    await alice.destroy_group(room)
    await until(lambda: bob.rooms[room].membership == "leave", what="bob sees the group gone")
    await until(lambda: alice.rooms[room].membership == "leave", what="alice's group gone")
    for member in (alice, bob):
        assert room not in {r.room_id for r in member.room_list()}
    with pytest.raises(MatrixError):
        await bob.send_text(room, "into the void")


def _drain(queue: object) -> list[object]:
    import asyncio

    assert isinstance(queue, asyncio.Queue)
    out = []
    while not queue.empty():
        out.append(queue.get_nowait())
    return out

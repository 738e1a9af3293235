"""Profiles: fields with their visibility, read by the owner, a room-mate and a stranger; the avatar."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from client_tk.core.client import ChatClient
from common.errors import MatrixError
from tests.client.conftest import MakeClient, until
from tests.support.server import RunningServer

PHONE, LOCATION, EMAIL = "im.parley.phone", "im.parley.location", "im.parley.email"


async def media_bytes(client: ChatClient, uri: str) -> bytes:
    server_name, media_id = uri.removeprefix("mxc://").split("/", 1)
    chunks: list[bytes] = []
    await client.http.download(f"/_matrix/client/v1/media/download/{server_name}/{media_id}", chunks.append)
    return b"".join(chunks)


async def test_profile_fields_visibility_and_avatar(server: RunningServer, new_user: MakeClient) -> None:
    alice, mate, stranger = await new_user("alice"), await new_user("mate"), await new_user("stranger")
    room = await alice.create_group("Profiles", [mate.user_id])
    await until(lambda: room in mate.rooms, what="invite")
    await mate.accept(room)

    await alice.set_profile_field("displayname", "Alice Liddell")
    await alice.set_profile_field(PHONE, "+44 20 7946 0000")
    await alice.set_profile_field(LOCATION, "Oxford")
    await alice.set_profile_field(EMAIL, "Alice@Example.test")
    assert await alice.profile_visibility() == {PHONE: "shared_room", LOCATION: "shared_room",
                                                EMAIL: "shared_room"}
    assert await alice.set_profile_visibility({LOCATION: "everyone", EMAIL: "nobody"}) == {
        PHONE: "shared_room", LOCATION: "everyone", EMAIL: "nobody"}

    own = await alice.get_profile()
    assert own == {"displayname": "Alice Liddell", PHONE: "+44 20 7946 0000", LOCATION: "Oxford",
                   EMAIL: "alice@example.test"}
    assert await mate.get_profile(alice.user_id) == {"displayname": "Alice Liddell",
                                                     PHONE: "+44 20 7946 0000", LOCATION: "Oxford"}
    assert await stranger.get_profile(alice.user_id) == {"displayname": "Alice Liddell", LOCATION: "Oxford"}

    # The mate leaves the only shared room: from then on a stranger.
    await mate.leave(room)
    await until(lambda: alice.rooms[room].members.get(mate.user_id) == "leave", what="mate left")
    assert await mate.get_profile(alice.user_id) == {"displayname": "Alice Liddell", LOCATION: "Oxford"}

    # Bad values and other people's profiles are refused.
    with pytest.raises(MatrixError):
        await alice.set_profile_field(PHONE, "call me maybe")
    with pytest.raises(MatrixError):
        await alice.set_profile_visibility({PHONE: "friends"})
    with pytest.raises(MatrixError) as forbidden:
        await stranger.http.put(f"/_matrix/client/v3/profile/{alice.user_id}/displayname",
                                {"displayname": "Mallory"})
    assert forbidden.value.status == 403

    # Clearing a field.
    await alice.set_profile_field(PHONE, None)
    assert PHONE not in await alice.get_profile()

    # The avatar: uploaded, public, the same bytes come back.
    out = io.BytesIO()
    Image.new("RGB", (16, 16), (10, 120, 200)).save(out, "PNG")
    picture = out.getvalue()
    uri = await alice.set_avatar(picture, "image/png")
    assert uri.startswith("mxc://")
    for reader in (alice, stranger):
        assert (await reader.get_profile(alice.user_id))["avatar_url"] == uri
    assert await media_bytes(stranger, uri) == picture
    # Sharing a room now, the stranger sees shared_room fields, still not the hidden e-mail.
    await alice.set_profile_field(PHONE, "+1 555 0100")
    assert PHONE not in await stranger.get_profile(alice.user_id)
    room2 = await alice.create_group("After avatar", [stranger.user_id])
    await until(lambda: room2 in stranger.rooms, what="invite")
    await stranger.accept(room2)
    assert await stranger.get_profile(alice.user_id) == {
        "displayname": "Alice Liddell", "avatar_url": uri, PHONE: "+1 555 0100", LOCATION: "Oxford"}

"""Profile visibility from the owner, a room-mate and a stranger; profile changes reach rooms."""

from __future__ import annotations

from tests.homeserver.test_media_rooms import make_room
from tests.homeserver.test_media_support import UNSTABLE, png_bytes, upload_ok
from tests.support.server import RunningServer

PHONE, LOCATION, EMAIL = "im.parley.phone", "im.parley.location", "im.parley.email"


async def test_visibility_for_owner_room_mate_and_stranger(server: RunningServer) -> None:
    alice = await server.register()
    mate = await server.register()
    stranger = await server.register()
    invited_only = await server.register()
    room_id = await make_room(server, alice, mate)
    response = await server.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": invited_only.user_id})
    assert response.status_code == 200, response.text
    await server.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={"displayname": "Alice"})
    for field, value in ((PHONE, "+1 555 0100"), (LOCATION, "Ostrava"), (EMAIL, "alice@example.org")):
        await server.api("PUT", f"profile/{alice.user_id}/{field}", alice, json={field: value})
    await server.api("PUT", UNSTABLE + "/profile/visibility", alice,
                     json={PHONE: "nobody", LOCATION: "shared_room", EMAIL: "everyone"})

    async def view(reader: object) -> dict[str, str]:
        response = await server.api("GET", f"profile/{alice.user_id}", reader)  # type: ignore[arg-type]
        assert response.status_code == 200, response.text
        result: dict[str, str] = response.json()
        return result

    assert await view(alice) == {"displayname": "Alice", PHONE: "+1 555 0100", LOCATION: "Ostrava",
                                 EMAIL: "alice@example.org"}
    assert await view(mate) == {"displayname": "Alice", LOCATION: "Ostrava", EMAIL: "alice@example.org"}
    assert await view(stranger) == {"displayname": "Alice", EMAIL: "alice@example.org"}
    # An invitation is not a shared room yet.
    assert await view(invited_only) == {"displayname": "Alice", EMAIL: "alice@example.org"}
    assert (await server.api("GET", f"profile/{alice.user_id}/{LOCATION}", mate)).json() == {LOCATION: "Ostrava"}
    assert (await server.api("GET", f"profile/{alice.user_id}/{LOCATION}", stranger)).status_code == 404
    # Leaving the room makes the mate a stranger.
    assert (await server.api("POST", f"rooms/{room_id}/leave", mate, json={})).status_code == 200
    assert await view(mate) == {"displayname": "Alice", EMAIL: "alice@example.org"}


async def test_profile_changes_reach_the_rooms(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await make_room(server, alice, bob)
    response = await server.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={"displayname": "Alice N."})
    assert response.status_code == 200
    avatar = await upload_ok(server, alice, png_bytes(), "image/png")
    response = await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice, json={"avatar_url": avatar})
    assert response.status_code == 200
    member = await server.api("GET", f"rooms/{room_id}/state/m.room.member/{alice.user_id}", bob)
    assert member.status_code == 200, member.text
    assert member.json() == {"membership": "join", "displayname": "Alice N.", "avatar_url": avatar}
    # New members' events carry their profile too.
    carol = await server.register()
    await server.api("PUT", f"profile/{carol.user_id}/displayname", carol, json={"displayname": "Carol"})
    await server.api("POST", f"rooms/{room_id}/invite", alice, json={"user_id": carol.user_id})
    assert (await server.api("POST", f"rooms/{room_id}/join", carol, json={})).status_code == 200
    member = await server.api("GET", f"rooms/{room_id}/state/m.room.member/{carol.user_id}", bob)
    assert member.json()["displayname"] == "Carol"

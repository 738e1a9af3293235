"""Profiles over real HTTP: display names, avatars (any mxc:// URI; our media: your own JPEG/PNG, 2 MB),
extra fields with visibility."""

from __future__ import annotations

import secrets

from tests.homeserver.test_media_support import (
    UNSTABLE,
    jpeg_bytes,
    padded_png,
    png_bytes,
    upload_ok,
)
from tests.support.server import RunningServer

PHONE, LOCATION, EMAIL = "im.parley.phone", "im.parley.location", "im.parley.email"


async def test_display_name(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    # Never set: the localpart, as on Synapse (clients show it; it is not stored).
    response = await server.api("GET", f"profile/{alice.user_id}/displayname", bob)
    assert response.status_code == 200
    assert response.json() == {"displayname": alice.user_id[1:].split(":")[0]}
    response = await server.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={"displayname": "Alice A."})
    assert response.status_code == 200, response.text
    for reader in (alice, bob):
        response = await server.api("GET", f"profile/{alice.user_id}", reader)
        assert response.json() == {"displayname": "Alice A."}
        response = await server.api("GET", f"profile/{alice.user_id}/displayname", reader)
        assert response.json() == {"displayname": "Alice A."}
    # At most 256 characters, strings only, printable.
    ok = "é" * 256
    assert (await server.api("PUT", f"profile/{alice.user_id}/displayname", alice,
                             json={"displayname": ok})).status_code == 200
    for bad in ("x" * 257, 42, ["a"], "bad\nname"):
        response = await server.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={"displayname": bad})
        assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM", bad
    response = await server.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={})
    assert response.status_code == 400 and response.json()["errcode"] == "M_MISSING_PARAM"
    # Only the owner may change a profile.
    response = await server.api("PUT", f"profile/{alice.user_id}/displayname", bob, json={"displayname": "Mallory"})
    assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
    assert (await server.api("GET", f"profile/{alice.user_id}", bob)).json() == {"displayname": ok}
    # Clearing, explicitly: no display name at all then.
    assert (await server.api("DELETE", f"profile/{alice.user_id}/displayname", alice)).status_code == 200
    assert (await server.api("GET", f"profile/{alice.user_id}", bob)).json() == {}


async def test_unknown_and_invalid_users(server: RunningServer) -> None:
    alice = await server.register()
    ours = server.config.server_name
    user_id = f"@nobody{secrets.token_hex(4)}:{ours}"
    for path in (f"profile/{user_id}", f"profile/{user_id}/displayname", f"profile/{user_id}/avatar_url"):
        response = await server.api("GET", path, alice)
        assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND", path
    # Another server's user is asked of that server (query/profile); one that cannot be reached is a
    # 502 naming it (tests/homeserver/federation/test_remote_queries.py reads a reachable one).
    response = await server.api("GET", "profile/@alice:elsewhere.example/displayname", alice)
    assert response.status_code == 502 and "elsewhere.example" in response.json()["error"], response.text
    response = await server.api("GET", "profile/not-a-user-id", alice)
    assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM"
    # Reading needs no token (spec: GET /profile/{userId} "Requires auth: No"); writing does.
    response = await server.api("GET", f"profile/{alice.user_id}")
    assert response.status_code == 200
    response = await server.api("PUT", f"profile/{alice.user_id}/displayname", json={"displayname": "x"})
    assert response.status_code == 401
    response = await server.api("PUT", f"profile/{alice.user_id}/org.example.colour", alice, json={"org.example.colour": "red"})
    assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM"


async def test_extra_fields_visibility_owner_and_stranger(server: RunningServer) -> None:
    alice = await server.register()
    stranger = await server.register()
    values = {PHONE: "+420 123 456 789", LOCATION: "Brno", EMAIL: "Alice@Example.org"}
    for field, value in values.items():
        response = await server.api("PUT", f"profile/{alice.user_id}/{field}", alice, json={field: value})
        assert response.status_code == 200, response.text
    # Defaults: extra fields are visible to people sharing a room only.
    response = await server.api("GET", UNSTABLE + "/profile/visibility", alice)
    assert response.json() == {PHONE: "shared_room", LOCATION: "shared_room", EMAIL: "shared_room"}
    response = await server.api(
        "PUT", UNSTABLE + "/profile/visibility", alice,
        json={PHONE: "everyone", LOCATION: "shared_room", EMAIL: "nobody"},
    )
    assert response.status_code == 200
    assert response.json() == {PHONE: "everyone", LOCATION: "shared_room", EMAIL: "nobody"}
    name = {"displayname": alice.user_id[1:].split(":")[0]}
    owner_view = (await server.api("GET", f"profile/{alice.user_id}", alice)).json()
    assert owner_view == {**name, PHONE: "+420 123 456 789", LOCATION: "Brno", EMAIL: "alice@example.org"}
    stranger_view = (await server.api("GET", f"profile/{alice.user_id}", stranger)).json()
    assert stranger_view == {**name, PHONE: "+420 123 456 789"}
    # Hidden and unset fields answer the same.
    for field in (LOCATION, EMAIL):
        response = await server.api("GET", f"profile/{alice.user_id}/{field}", stranger)
        assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
        response = await server.api("GET", f"profile/{alice.user_id}/{field}", alice)
        assert response.status_code == 200 and field in response.json()
    response = await server.api("GET", f"profile/{stranger.user_id}/{LOCATION}", alice)
    assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
    # Nobody means nobody but the owner; everyone includes strangers.
    await server.api("PUT", UNSTABLE + "/profile/visibility", alice, json={PHONE: "nobody", EMAIL: "everyone"})
    assert (await server.api("GET", f"profile/{alice.user_id}", stranger)).json() == {**name, EMAIL: "alice@example.org"}
    # Validation.
    for field, bad in ((PHONE, "call me maybe"), (PHONE, "1" * 33), (LOCATION, "x" * 101), (EMAIL, "not-an-email"),
                       (PHONE, 123)):
        response = await server.api("PUT", f"profile/{alice.user_id}/{field}", alice, json={field: bad})
        assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM", (field, bad)
    for body in ({PHONE: "public"}, {"displayname": "nobody"}, {"im.parley.other": "everyone"}):
        response = await server.api("PUT", UNSTABLE + "/profile/visibility", alice, json=body)
        assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM", body
    response = await server.api("PUT", UNSTABLE + "/profile/visibility", alice, json={})
    assert response.status_code == 400 and response.json()["errcode"] == "M_MISSING_PARAM"
    # Setting a visibility before a value keeps it for the value.
    bob = await server.register()
    await server.api("PUT", UNSTABLE + "/profile/visibility", bob, json={LOCATION: "everyone"})
    await server.api("PUT", f"profile/{bob.user_id}/{LOCATION}", bob, json={LOCATION: "Praha"})
    assert (await server.api("GET", f"profile/{bob.user_id}", stranger)).json() == {
        "displayname": bob.user_id[1:].split(":")[0], LOCATION: "Praha"}


async def test_avatars_local_must_be_own_small_jpeg_or_png_remote_any_mxc(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    limit = server.config.limits.max_avatar_bytes
    assert limit == 2 * 1024 * 1024
    path = f"profile/{alice.user_id}/avatar_url"

    async def set_avatar(uri: str) -> int:
        response = await server.api("PUT", path, alice, json={"avatar_url": uri})
        if response.status_code != 200:
            assert response.json()["errcode"] in ("M_INVALID_PARAM", "M_TOO_LARGE", "M_FORBIDDEN", "M_NOT_FOUND")
        return response.status_code

    exact = await upload_ok(server, alice, padded_png(limit), "image/png")
    assert await set_avatar(exact) == 200
    assert (await server.api("GET", path, bob)).json() == {"avatar_url": exact}
    jpeg = await upload_ok(server, alice, jpeg_bytes(), "image/jpeg")
    assert await set_avatar(jpeg) == 200
    # A JPEG uploaded as "application/octet-stream" is still a JPEG by content.
    jpeg_untyped = await upload_ok(server, alice, jpeg_bytes(), "application/octet-stream", filename="x.bin")
    assert await set_avatar(jpeg_untyped) == 200
    # One byte over the avatar limit.
    over = await upload_ok(server, alice, padded_png(limit + 1), "image/png")
    response = await server.api("PUT", path, alice, json={"avatar_url": over})
    assert response.status_code == 413 and response.json()["errcode"] == "M_TOO_LARGE"
    # Not images: by content, whatever the name or type says.
    for content, ctype, name in ((b"%PDF-1.4 fake", "image/png", "avatar.png"),
                                 (b"\x89PNG\r\n\x1a\n" + b"junk" * 100, "image/png", "a.png"),
                                 (b"GIF89a" + b"\0" * 50, "image/gif", "a.gif"),
                                 (b"<svg xmlns='http://www.w3.org/2000/svg'/>", "image/svg+xml", "a.svg")):
        uri = await upload_ok(server, alice, content, ctype, filename=name)
        response = await server.api("PUT", path, alice, json={"avatar_url": uri})
        assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM", name
    # Someone else's media, media not uploaded yet, a foreign server, not a URI.
    bobs = await upload_ok(server, bob, png_bytes(), "image/png")
    assert await set_avatar(bobs) == 403
    pending = (await server.client.post("/_matrix/media/v1/create", headers=alice.headers)).json()["content_uri"]
    assert await set_avatar(pending) == 404
    # Not an mxc:// URI, or not of its grammar (spec: avatar_url is "mx-mxc-uri"; SyTest's
    # "/joined_members return joined members" sets an http:// URL, which the spec does not allow).
    for bad in ("https://example.org/a.png", "mxc://", "mxc://elsewhere.example/",
                "mxc://elsewhere.example/a/b", "mxc://bad host/abc", "mxc://elsewhere.example/a%2Fb",
                "mxc://elsewhere.example/" + "a" * 256):
        assert await set_avatar(bad) == 400, bad
    # The last good avatar is still set; clearing works.
    assert (await server.api("GET", path, bob)).json() == {"avatar_url": jpeg_untyped}
    # Another server's media: any valid mxc:// URI (clients set remote avatars); it reaches
    # the profile and the member events of the user's rooms.
    room_id = (await server.api("POST", "createRoom", alice, json={})).json()["room_id"]
    for remote in (f"mxc://elsewhere.example/{bobs.rsplit('/', 1)[1]}", "mxc://[::1]:8448/Some_Media-Id",
                   "mxc://example.com:8448/" + "z" * 255):
        assert await set_avatar(remote) == 200, remote
        assert (await server.api("GET", path, bob)).json() == {"avatar_url": remote}
        member = await server.api("GET", f"rooms/{room_id}/state/m.room.member/{alice.user_id}", alice)
        assert member.json()["avatar_url"] == remote
    assert await set_avatar("") == 200
    assert (await server.api("GET", path, bob)).json() == {}


async def test_avatar_in_use_survives_media_cleanup_hooks(server: RunningServer) -> None:
    """Deleting media never removes a file that is somebody's avatar."""
    alice = await server.register()
    uri = await upload_ok(server, alice, png_bytes(), "image/png")
    assert (await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice, json={"avatar_url": uri})).status_code == 200
    media = server.hs.services.media
    media_id = uri.rsplit("/", 1)[1]
    assert await media.delete_unreferenced([media_id]) == []
    response = await server.client.get(f"/_matrix/client/v1/media/download/{uri[6:]}", headers=alice.headers)
    assert response.status_code == 200


async def test_public_fields_are_readable_without_a_token(server: RunningServer) -> None:
    alice = await server.register()
    await server.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={"displayname": "Alice"})
    await server.api("PUT", f"profile/{alice.user_id}/{PHONE}", alice, json={PHONE: "+1 555"})
    await server.api("PUT", UNSTABLE + "/profile/visibility", alice, json={PHONE: "shared_room"})
    anonymous = await server.api("GET", f"profile/{alice.user_id}/displayname")
    assert anonymous.status_code == 200 and anonymous.json() == {"displayname": "Alice"}
    assert (await server.api("GET", f"profile/{alice.user_id}")).json() == {"displayname": "Alice"}
    assert (await server.api("GET", f"profile/{alice.user_id}/{PHONE}")).status_code == 404
    # A bad token is still refused.
    bad = await server.api("GET", f"profile/{alice.user_id}", headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401

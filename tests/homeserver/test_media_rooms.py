"""Media and rooms: declared references, deletion on redaction and on room purge, group avatars."""

from __future__ import annotations

import secrets
from typing import Any

from tests.homeserver.test_media_support import (
    DOWNLOAD,
    THUMBNAIL,
    UNSTABLE,
    media_path,
    png_bytes,
    upload_ok,
)
from tests.support.server import Account, RunningServer


async def make_room(server: RunningServer, owner: Account, *members: Account, **body: Any) -> str:
    response = await server.api("POST", "createRoom", owner, json={
        "preset": "private_chat", "invite": [m.user_id for m in members], **body})
    assert response.status_code == 200, response.text
    room_id: str = response.json()["room_id"]
    for member in members:
        joined = await server.api("POST", f"rooms/{room_id}/join", member, json={})
        assert joined.status_code == 200, joined.text
    return room_id


async def send(server: RunningServer, account: Account, room_id: str, content: dict[str, Any],
               event_type: str = "m.room.encrypted") -> str:
    response = await server.api("PUT", f"rooms/{room_id}/send/{event_type}/{secrets.token_hex(6)}",
                                account, json=content)
    assert response.status_code == 200, response.text
    event_id: str = response.json()["event_id"]
    return event_id


async def attach(server: RunningServer, account: Account, room_id: str, event_id: str, *uris: str) -> Any:
    return await server.api("POST", UNSTABLE + "/media/attach", account,
                            json={"room_id": room_id, "event_id": event_id, "media_ids": list(uris)})


async def redact(server: RunningServer, account: Account, room_id: str, event_id: str) -> None:
    response = await server.api("PUT", f"rooms/{room_id}/redact/{event_id}/{secrets.token_hex(6)}",
                                account, json={})
    assert response.status_code == 200, response.text


async def exists(server: RunningServer, account: Account, uri: str) -> bool:
    response = await server.client.get(f"{DOWNLOAD}/{media_path(uri)}", headers=account.headers)
    assert response.status_code in (200, 404), response.text
    media_id = uri.rsplit("/", 1)[1]
    on_disk = (server.config.media_path.resolve() / media_id[:2] / media_id[2:4] / media_id).exists()
    assert on_disk == (response.status_code == 200)
    return response.status_code == 200


def ciphertext() -> dict[str, Any]:
    return {"algorithm": "im.parley.sender_key.v1", "ciphertext": secrets.token_urlsafe(40)}


async def test_redaction_deletes_media_only_that_event_referenced(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await make_room(server, alice, bob)
    only_here = await upload_ok(server, alice, b"encrypted attachment 1")
    shared = await upload_ok(server, alice, b"encrypted attachment 2")
    first = await send(server, alice, room_id, ciphertext())
    second = await send(server, alice, room_id, ciphertext())
    assert (await attach(server, alice, room_id, first, only_here, shared)).status_code == 200
    assert (await attach(server, alice, room_id, second, shared.rsplit("/", 1)[1])).status_code == 200
    await redact(server, alice, room_id, first)
    assert not await exists(server, bob, only_here)
    assert await exists(server, bob, shared)
    await redact(server, alice, room_id, second)
    assert not await exists(server, bob, shared)
    # Unencrypted content is scanned for our mxc:// URIs (no declaration needed).
    image = await upload_ok(server, alice, png_bytes(), "image/png")
    thumb = await upload_ok(server, alice, png_bytes(4, 4), "image/png")
    event = await send(server, alice, room_id, {
        "msgtype": "m.image", "body": "cat.png", "url": image,
        "info": {"mimetype": "image/png", "thumbnail_url": thumb}}, "m.room.message")
    unrelated = await upload_ok(server, alice, b"kept")
    await redact(server, alice, room_id, event)
    assert not await exists(server, bob, image)
    assert not await exists(server, bob, thumb)
    assert await exists(server, bob, unrelated)
    # Quoting somebody else's media in your own message and redacting it
    # does not delete their media.
    alices = await upload_ok(server, alice, png_bytes(5, 5), "image/png")
    quote = await send(server, bob, room_id, {"msgtype": "m.image", "body": "x", "url": alices}, "m.room.message")
    await redact(server, bob, room_id, quote)
    assert await exists(server, bob, alices)


async def test_attach_is_checked(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    outsider = await server.register()
    room_id = await make_room(server, alice, bob)
    event_id = await send(server, alice, room_id, ciphertext())
    alices = await upload_ok(server, alice, b"a")
    outsiders = await upload_ok(server, outsider, b"o")
    # Not in the room.
    response = await attach(server, outsider, room_id, event_id, outsiders)
    assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
    # Somebody else's media cannot be tied to your event (and so deleted with it).
    bobs_media = await upload_ok(server, bob, b"b")
    bobs_first = await send(server, bob, room_id, ciphertext())
    response = await attach(server, bob, room_id, bobs_first, alices)
    assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
    # Only to your own events, in the room they are in.
    response = await attach(server, bob, room_id, event_id, bobs_media)
    assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
    other_room = await make_room(server, bob)
    response = await attach(server, bob, other_room, bobs_first, bobs_media)
    assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
    response = await attach(server, bob, room_id, "$doesnotexist000", bobs_media)
    assert response.status_code == 404 and response.json()["errcode"] == "M_NOT_FOUND"
    for body, code in (({"room_id": "nope", "event_id": event_id, "media_ids": [alices]}, "M_INVALID_PARAM"),
                       ({"room_id": room_id, "event_id": "nope", "media_ids": [alices]}, "M_INVALID_PARAM"),
                       ({"room_id": room_id, "event_id": event_id, "media_ids": []}, "M_INVALID_PARAM"),
                       ({"room_id": room_id, "event_id": event_id, "media_ids": [alices] * 51}, "M_INVALID_PARAM")):
        response = await server.api("POST", UNSTABLE + "/media/attach", alice, json=body)
        assert response.status_code == 400 and response.json()["errcode"] == code, body
    # Bob redacting his own event does not touch Alice's media.
    bobs_event = await send(server, bob, room_id, ciphertext())
    await redact(server, bob, room_id, bobs_event)
    assert await exists(server, alice, alices)


async def test_destroyed_group_takes_its_media_along(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    group = await make_room(server, alice, bob, name="Group")
    other = await make_room(server, alice, bob, name="Other")
    in_group = await upload_ok(server, bob, b"group file")
    in_both = await upload_ok(server, alice, b"forwarded file")
    avatar = await upload_ok(server, alice, png_bytes(), "image/png")
    profile_avatar = await upload_ok(server, alice, png_bytes(8, 8), "image/png")
    await server.api("PUT", f"profile/{alice.user_id}/avatar_url", alice, json={"avatar_url": profile_avatar})
    e1 = await send(server, bob, group, ciphertext())
    assert (await attach(server, bob, group, e1, in_group)).status_code == 200
    e2 = await send(server, alice, group, ciphertext())
    assert (await attach(server, alice, group, e2, in_both, profile_avatar)).status_code == 200
    e3 = await send(server, alice, other, ciphertext())
    assert (await attach(server, alice, other, e3, in_both)).status_code == 200
    response = await server.api("PUT", f"rooms/{group}/state/m.room.avatar", alice, json={"url": avatar})
    assert response.status_code == 200, response.text
    assert (await attach(server, alice, group, response.json()["event_id"], avatar)).status_code == 200
    response = await server.api("POST", UNSTABLE + f"/rooms/{group}/destroy", alice, json={})
    assert response.status_code == 200, response.text
    assert not await exists(server, alice, in_group)
    assert not await exists(server, alice, avatar)
    assert await exists(server, alice, in_both)
    assert await exists(server, alice, profile_avatar)  # still somebody's profile avatar


async def test_group_avatar_needs_power_and_is_served(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room_id = await make_room(server, alice, bob, name="Avatars")
    bobs = await upload_ok(server, bob, png_bytes(), "image/png")
    response = await server.api("PUT", f"rooms/{room_id}/state/m.room.avatar", bob, json={"url": bobs})
    assert response.status_code == 403 and response.json()["errcode"] == "M_FORBIDDEN"
    alices = await upload_ok(server, alice, png_bytes(120, 80), "image/png")
    response = await server.api("PUT", f"rooms/{room_id}/state/m.room.avatar", alice, json={"url": alices})
    assert response.status_code == 200, response.text
    state = await server.api("GET", f"rooms/{room_id}/state/m.room.avatar", bob)
    assert state.json()["url"] == alices
    response = await server.client.get(f"{DOWNLOAD}/{media_path(alices)}", headers=bob.headers)
    assert response.status_code == 200 and response.content == png_bytes(120, 80)
    response = await server.client.get(f"{THUMBNAIL}/{media_path(alices)}",
                                       params={"width": 32, "height": 32, "method": "crop"}, headers=bob.headers)
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"

"""Room aliases, canonical aliases, joining by alias and the public room list, over HTTP."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from tests.support.server import Account, RunningServer


def _alias(server: RunningServer, name: str | None = None) -> str:
    return f"#{name or 'a' + secrets.token_hex(4)}:{server.config.server_name}"


async def _room(server: RunningServer, account: Account, **body: Any) -> str:
    response = await server.api("POST", "createRoom", account, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["room_id"])


async def test_alias_lifecycle(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await _room(server, alice)
    alias = _alias(server)
    path = f"directory/room/{quote(alias)}"
    assert (await server.api("GET", path)).status_code == 404
    assert (await server.api("PUT", path, alice, json={"room_id": room})).status_code == 200
    # Resolving needs no token.
    resolved = await server.api("GET", path)
    assert resolved.status_code == 200
    assert resolved.json() == {"room_id": room, "servers": [server.config.server_name]}
    again = await server.api("PUT", path, alice, json={"room_id": room})
    assert again.status_code == 409
    # Only members create aliases for a room; only this server's aliases.
    stranger = await server.api("PUT", f"directory/room/{quote(_alias(server))}", bob, json={"room_id": room})
    assert stranger.status_code == 403
    remote = await server.api("PUT", f"directory/room/{quote('#x:elsewhere.example')}", alice, json={"room_id": room})
    assert remote.status_code == 400 and remote.json()["errcode"] == "M_INVALID_PARAM"
    bad = await server.api("PUT", f"directory/room/{quote('nosigil')}", alice, json={"room_id": room})
    assert bad.status_code == 400
    missing_room = await server.api("PUT", f"directory/room/{quote(_alias(server))}", alice,
                                    json={"room_id": f"!nope:{server.config.server_name}"})
    assert missing_room.status_code == 404
    assert (await server.api("GET", f"rooms/{quote(room)}/aliases", alice)).json() == {"aliases": [alias]}
    assert (await server.api("GET", f"rooms/{quote(room)}/aliases", bob)).status_code == 403

    # Bob joins (the room is private: invite first) by alias.
    await server.api("POST", f"rooms/{quote(room)}/invite", alice, json={"user_id": bob.user_id})
    joined = await server.api("POST", f"join/{quote(alias)}", bob, json={})
    assert joined.status_code == 200, joined.text
    assert joined.json() == {"room_id": room}
    # A plain member who did not create the alias may not delete it; the creator may.
    assert (await server.api("DELETE", path, bob)).status_code == 403
    assert (await server.api("DELETE", path, alice)).status_code == 200
    assert (await server.api("GET", path)).status_code == 404
    assert (await server.api("DELETE", path, alice)).status_code == 404
    unknown = await server.api("POST", f"join/{quote(alias)}", bob, json={})
    assert unknown.status_code == 404 and unknown.json()["errcode"] == "M_NOT_FOUND"


async def test_create_room_with_alias_sets_the_canonical_alias(server: RunningServer) -> None:
    alice = await server.register()
    name = "r" + secrets.token_hex(4)
    room = await _room(server, alice, room_alias_name=name)
    alias = _alias(server, name)
    assert (await server.api("GET", f"directory/room/{quote(alias)}")).json()["room_id"] == room
    state = await server.api("GET", f"rooms/{quote(room)}/state/m.room.canonical_alias", alice)
    assert state.json() == {"alias": alias}
    taken = await server.api("POST", "createRoom", alice, json={"room_alias_name": name})
    assert taken.status_code == 400 and taken.json()["errcode"] == "M_ROOM_IN_USE"
    bad = await server.api("POST", "createRoom", alice, json={"room_alias_name": "a:b"})
    assert bad.status_code == 400 and bad.json()["errcode"] == "M_INVALID_PARAM"
    # A canonical alias must be an alias of this room.
    other = await _room(server, alice)
    wrong = await server.api("PUT", f"rooms/{quote(other)}/state/m.room.canonical_alias", alice,
                             json={"alias": alias})
    assert wrong.status_code == 400 and wrong.json()["errcode"] == "M_BAD_ALIAS"
    alt = await server.api("PUT", f"rooms/{quote(room)}/state/m.room.canonical_alias", alice,
                           json={"alias": alias, "alt_aliases": [_alias(server)]})
    assert alt.status_code == 400 and alt.json()["errcode"] == "M_BAD_ALIAS"


async def test_public_room_list_search_and_pagination(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    tag = secrets.token_hex(3)
    public = await _room(server, alice, visibility="public", name=f"Public {tag}", topic="about cats")
    busy = await _room(server, alice, visibility="public", preset="public_chat", name=f"Busy {tag}")
    await server.api("POST", f"join/{quote(busy)}", bob, json={})
    private = await _room(server, alice, name=f"Private {tag}")

    listing = await server.api("GET", "publicRooms")  # no token needed
    assert listing.status_code == 200
    ids = [r["room_id"] for r in listing.json()["chunk"]]
    assert ids[:2] == [busy, public]  # most members first
    assert private not in ids
    entry = next(r for r in listing.json()["chunk"] if r["room_id"] == public)
    assert entry["name"] == f"Public {tag}" and entry["topic"] == "about cats"
    assert entry["num_joined_members"] == 1
    assert entry["world_readable"] is False and entry["guest_can_join"] is False
    assert listing.json()["total_room_count_estimate"] == 2

    first = (await server.api("GET", "publicRooms", params={"limit": "1"})).json()
    assert [r["room_id"] for r in first["chunk"]] == [busy]
    second = (await server.api("GET", "publicRooms", params={"limit": "1", "since": first["next_batch"]})).json()
    assert [r["room_id"] for r in second["chunk"]] == [public]
    assert "next_batch" not in second and "prev_batch" in second

    found = await server.api("POST", "publicRooms", alice,
                             json={"filter": {"generic_search_term": "CATS"}, "limit": 10})
    assert [r["room_id"] for r in found.json()["chunk"]] == [public]
    assert (await server.api("POST", "publicRooms", None, json={})).status_code == 401
    assert (await server.api("GET", "publicRooms", params={"since": "garbage"})).status_code == 400
    bad_filter = await server.api("POST", "publicRooms", alice, json={"filter": "CATS"})
    assert (bad_filter.status_code, bad_filter.json()["errcode"]) == (400, "M_BAD_JSON")


async def test_directory_visibility(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await _room(server, alice, preset="public_chat")
    path = f"directory/list/room/{quote(room)}"
    assert (await server.api("GET", path)).json() == {"visibility": "private"}
    assert (await server.api("PUT", path, bob, json={"visibility": "public"})).status_code == 403
    await server.api("POST", f"join/{quote(room)}", bob, json={})
    # Joined, but without the power to set the canonical alias.
    assert (await server.api("PUT", path, bob, json={"visibility": "public"})).status_code == 403
    assert (await server.api("PUT", path, alice, json={"visibility": "public"})).status_code == 200
    assert (await server.api("GET", path)).json() == {"visibility": "public"}
    assert room in [r["room_id"] for r in (await server.api("GET", "publicRooms")).json()["chunk"]]
    bad = await server.api("PUT", path, alice, json={"visibility": "secret"})
    assert bad.status_code == 400 and bad.json()["errcode"] == "M_INVALID_PARAM"
    assert (await server.api("PUT", path, alice, json={"visibility": "private"})).status_code == 200
    assert room not in [r["room_id"] for r in (await server.api("GET", "publicRooms")).json()["chunk"]]
    unknown = await server.api("GET", f"directory/list/room/{quote('!nope:' + server.config.server_name)}")
    assert unknown.status_code == 404

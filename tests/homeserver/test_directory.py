"""User directory search and contacts: only people who share a room with the searcher."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from tests.homeserver.test_media_rooms import make_room
from tests.homeserver.test_media_support import UNSTABLE
from tests.support.server import RunningServer


async def test_search_and_contacts_only_show_room_mates(server: RunningServer) -> None:
    tag = secrets.token_hex(3)
    me = await server.register()
    mates = [await server.register(f"mate{i}{tag}") for i in range(3)]
    stranger = await server.register(f"stranger{tag}")
    await server.api("PUT", f"profile/{stranger.user_id}/displayname", stranger, json={"displayname": f"Mate {tag} X"})
    for i, mate in enumerate(mates):
        await server.api("PUT", f"profile/{mate.user_id}/displayname", mate, json={"displayname": f"Mate {tag} {i}"})
    await make_room(server, me, mates[0], mates[1])
    await make_room(server, me, mates[2])
    response = await server.api("POST", "user_directory/search", me, json={"search_term": f"mate {tag}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["limited"] is False
    assert [r["user_id"] for r in body["results"]] == [m.user_id for m in mates]
    assert body["results"][0] == {"user_id": mates[0].user_id, "display_name": f"Mate {tag} 0", "avatar_url": None}
    # By user id too, with a limit.
    response = await server.api("POST", "user_directory/search", me, json={"search_term": tag, "limit": 2})
    assert len(response.json()["results"]) == 2 and response.json()["limited"] is True
    # The stranger matches the term but shares no room.
    response = await server.api("POST", "user_directory/search", me, json={"search_term": "stranger"})
    assert response.json() == {"results": [], "limited": False}
    response = await server.api("POST", "user_directory/search", stranger, json={"search_term": "mate"})
    assert response.json()["results"] == []
    # Contacts.
    response = await server.api("GET", UNSTABLE + "/contacts", me)
    assert response.status_code == 200
    assert [c["user_id"] for c in response.json()["contacts"]] == [m.user_id for m in mates]
    assert (await server.api("GET", UNSTABLE + "/contacts", stranger)).json() == {"contacts": []}
    # Validation and auth.
    for body_ in ({}, {"search_term": 5}, {"search_term": "x" * 257}):
        response = await server.api("POST", "user_directory/search", me, json=body_)
        assert response.status_code == 400 and response.json()["errcode"] == "M_MISSING_PARAM"
    response = await server.api("POST", "user_directory/search", me, json={"search_term": "a", "limit": -1})
    assert response.status_code == 400 and response.json()["errcode"] == "M_INVALID_PARAM"
    assert (await server.api("POST", "user_directory/search", json={"search_term": "a"})).status_code == 401
    assert (await server.api("GET", UNSTABLE + "/contacts")).status_code == 401


async def test_users_in_public_rooms_are_searchable_by_anyone(server: RunningServer) -> None:
    searcher = await server.register()
    public_member = await server.register("pubdirmember")
    private_member = await server.register("privdirmember")
    public = (await server.api("POST", "createRoom", public_member, json={"preset": "public_chat"})).json()["room_id"]
    await server.api("POST", "createRoom", private_member, json={"preset": "private_chat"})

    async def found(term: str) -> list[str]:
        response = await server.api("POST", "user_directory/search", searcher, json={"search_term": term})
        assert response.status_code == 200, response.text
        return [r["user_id"] for r in response.json()["results"]]

    assert await found("pubdirmember") == [public_member.user_id]
    assert await found("privdirmember") == []

    async def found_by_self(account: Any, term: str) -> list[str]:
        response = await server.api("POST", "user_directory/search", account, json={"search_term": term})
        return [r["user_id"] for r in response.json()["results"]]

    # In a public room one is in the directory for everyone, oneself included; in a private one not.
    assert await found_by_self(public_member, "pubdirmember") == [public_member.user_id]
    assert await found_by_self(private_member, "privdirmember") == []
    await server.api("POST", f"rooms/{quote(public)}/leave", public_member, json={})
    assert await found("pubdirmember") == []
    assert await found_by_self(public_member, "pubdirmember") == []

"""Asking another server over real TLS: its users' profiles, its public rooms (``/publicRooms?server=``
and the federation ``publicRooms``), and its keys through a notary with the deprecated key-id path
(aliases: test_remote_aliases.py)."""

from __future__ import annotations

from urllib.parse import quote

from tests.homeserver.federation.test_joins import create_room
from tests.support.federation import Cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


async def test_another_servers_user_profile_is_read(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    named = await hs1.api("PUT", f"profile/{alice.user_id}/displayname", alice, json={"displayname": "Alice A."})
    assert named.status_code == 200, named.text
    field = await hs2.api("GET", f"profile/{alice.user_id}/displayname", bob)
    assert field.status_code == 200, field.text
    assert field.json() == {"displayname": "Alice A."}
    whole = await hs2.api("GET", f"profile/{alice.user_id}")
    assert whole.status_code == 200 and whole.json()["displayname"] == "Alice A.", whole.text
    missing = await hs2.api("GET", f"profile/@nobody:{H1}/displayname", bob)
    assert missing.status_code == 404 and missing.json()["errcode"] == "M_NOT_FOUND", missing.text


async def test_another_servers_public_rooms_are_listed(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, visibility="public", name="Square", topic="Everyone")
    listed = await hs2.api("GET", "publicRooms", bob, params={"server": H1})
    assert listed.status_code == 200, listed.text
    [entry] = listed.json()["chunk"]
    assert (entry["room_id"], entry["name"], entry["topic"]) == (room_id, "Square", "Everyone")
    with hs2.hs.database.activated():
        answer = await hs2.hs.federation.client.request(H1, "POST", "/_matrix/federation/v1/publicRooms",
                                                        json={"filter": {"generic_search_term": "squ"}})
    assert [e["room_id"] for e in answer["chunk"]] == [room_id]


async def test_the_notary_answers_the_deprecated_key_id_path(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    key_id = hs1.hs.signing_key.key_id
    response = await hs2.client.get(f"/_matrix/key/v2/query/{H1}/{quote(key_id)}")
    assert response.status_code == 200, response.text
    [keys] = response.json()["server_keys"]
    assert keys["server_name"] == H1 and key_id in keys["verify_keys"]
    assert set(keys["signatures"]) == {H1, H2}  # the notary's own signature added

"""Aliases of another server: resolved with that server's ``query/directory`` (spec, client-server
API "Room Aliases": a server asks the alias' server over federation), then joined through the
servers it names."""

from __future__ import annotations

from urllib.parse import quote

from tests.homeserver.federation.test_joins import create_room, joined_members
from tests.support.federation import Cluster

H1, H2 = "hs1.localhost", "hs2.localhost"


async def test_a_remote_alias_resolves_and_joins(pair: Cluster) -> None:
    hs1, hs2 = pair.running[H1], pair.running[H2]
    alice, bob = await hs1.register("alice"), await hs2.register("bob")
    room_id = await create_room(hs1, alice, room_alias_name="lobby")
    alias = quote(f"#lobby:{H1}", safe="")

    resolved = await hs2.api("GET", f"directory/room/{alias}", bob)
    assert resolved.status_code == 200, resolved.text
    assert resolved.json() == {"room_id": room_id, "servers": [H1]}

    joined = await hs2.api("POST", f"join/{alias}", bob, json={})
    assert joined.status_code == 200, joined.text
    assert joined.json() == {"room_id": room_id}
    assert await joined_members(hs1, alice, room_id) == {f"@alice:{H1}", f"@bob:{H2}"}


async def test_an_unknown_remote_alias_is_404(pair: Cluster) -> None:
    hs2 = pair.running[H2]
    bob = await hs2.register("bob")
    alias = quote(f"#nothing-here:{H1}", safe="")
    for method, path in (("GET", f"directory/room/{alias}"), ("POST", f"join/{alias}")):
        response = await hs2.api(method, path, bob, json={} if method == "POST" else None)
        assert response.status_code == 404, response.text
        assert response.json()["errcode"] == "M_NOT_FOUND"


async def test_an_alias_of_an_unreachable_server_is_a_clear_error(pair: Cluster) -> None:
    hs2 = pair.running[H2]
    bob = await hs2.register("bob")
    # hs3.localhost is no server of the cluster: discovery or connection fails.
    response = await hs2.api("GET", "directory/room/" + quote("#x:hs3.localhost", safe=""), bob)
    assert response.status_code == 502, response.text
    assert response.json()["errcode"] == "M_UNKNOWN"
    assert "hs3.localhost" in response.json()["error"]

"""The space hierarchy (``GET /_matrix/client/v1/rooms/{roomId}/hierarchy``) over real HTTP:
which children are listed to whom, depth, suggested-only, ordering and paging."""

from __future__ import annotations

from typing import Any

from tests.homeserver.room_helpers import create_room, expect_error
from tests.support.server import Account, RunningServer

H = "/_matrix/client/v1/rooms/{}/hierarchy"


async def _child(server: RunningServer, account: Account, space: str, child: str, **content: Any) -> None:
    body = {"via": [server.config.server_name], **content}
    response = await server.api("PUT", f"rooms/{space}/state/m.space.child/{child}", account, json=body)
    assert response.status_code == 200, response.text


async def _rooms(server: RunningServer, account: Account, space: str, **params: Any) -> dict[str, Any]:
    response = await server.api("GET", H.format(space), account, params=params)
    assert response.status_code == 200, response.text
    return dict(response.json())


async def test_hierarchy_lists_what_each_user_may_see(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    ours = server.config.server_name
    space = await create_room(server, alice, preset="public_chat", name="Space",
                              creation_content={"type": "m.space"})
    public = await create_room(server, alice, preset="public_chat", name="Public", topic="open")
    private = await create_room(server, alice, preset="private_chat", name="Private")
    restricted = await create_room(server, alice, preset="private_chat", name="Members of the space")
    assert (await server.api("PUT", f"rooms/{restricted}/state/m.room.join_rules/", alice, json={
        "join_rule": "restricted", "allow": [{"type": "m.room_membership", "room_id": space}]})).status_code == 200
    subspace = await create_room(server, alice, preset="public_chat", name="Sub", creation_content={"type": "m.space"})
    deep = await create_room(server, alice, preset="public_chat", name="Deep")
    await _child(server, alice, space, public, suggested=True, order="b")
    await _child(server, alice, space, private)
    await _child(server, alice, space, restricted)
    await _child(server, alice, space, subspace, order="a")
    await _child(server, alice, space, f"!unknown:{ours}")
    await _child(server, alice, subspace, deep)
    # No via: not a child (spec).
    assert (await server.api("PUT", f"rooms/{space}/state/m.space.child/{deep}", alice,
                             json={"via": []})).status_code == 200

    everything = await _rooms(server, alice, space)
    ids = [r["room_id"] for r in everything["rooms"]]
    # Breadth first, "order" first (a before b), then the others.
    assert ids[:3] == [space, subspace, public]
    assert set(ids) == {space, public, private, restricted, subspace, deep}
    top = everything["rooms"][0]
    assert top["room_type"] == "m.space" and top["name"] == "Space" and top["num_joined_members"] == 1
    assert top["join_rule"] == "public" and top["world_readable"] is False and top["guest_can_join"] is False
    # children_state lists every valid child, the unknown room too, as stripped events with a timestamp.
    children = {c["state_key"]: c for c in top["children_state"]}
    assert set(children) == {public, private, restricted, subspace, f"!unknown:{ours}"}
    assert children[public]["content"] == {"via": [ours], "suggested": True, "order": "b"}
    assert {"type", "state_key", "sender", "content", "origin_server_ts"} <= set(children[public])

    # Bob is in nothing: the public rooms only; the restricted one once he is in the space.
    bobs = [r["room_id"] for r in (await _rooms(server, bob, space))["rooms"]]
    assert set(bobs) == {space, public, subspace, deep}
    assert (await server.api("POST", f"rooms/{space}/join", bob)).status_code == 200
    bobs = [r["room_id"] for r in (await _rooms(server, bob, space))["rooms"]]
    assert set(bobs) == {space, public, subspace, deep, restricted}
    # A private room one is not in cannot be the root.
    await expect_error(await server.api("GET", H.format(private), bob), 403, "M_FORBIDDEN")
    await expect_error(await server.api("GET", H.format(f"!nothing:{ours}"), bob), 403, "M_FORBIDDEN")

    # Depth and suggested-only.
    shallow = [r["room_id"] for r in (await _rooms(server, alice, space, max_depth=1))["rooms"]]
    assert deep not in shallow and subspace in shallow
    assert [r["room_id"] for r in (await _rooms(server, alice, space, max_depth=0))["rooms"]] == [space]
    suggested = [r["room_id"] for r in (await _rooms(server, alice, space, suggested_only="true"))["rooms"]]
    assert suggested == [space, public]


async def test_hierarchy_pages(server: RunningServer) -> None:
    alice = await server.register()
    space = await create_room(server, alice, preset="public_chat", creation_content={"type": "m.space"})
    children = [await create_room(server, alice, preset="public_chat") for _ in range(4)]
    for i, child in enumerate(children):
        await _child(server, alice, space, child, order=f"{i}")
    seen: list[str] = []
    token = None
    for _ in range(5):
        params: dict[str, Any] = {"limit": 2, **({"from": token} if token else {})}
        page = await _rooms(server, alice, space, **params)
        seen += [r["room_id"] for r in page["rooms"]]
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == [space, *children]
    # A token belongs to the query it came from.
    first = await _rooms(server, alice, space, limit=2)
    changed = await server.api("GET", H.format(space), alice, params={"from": first["next_batch"], "max_depth": 1})
    await expect_error(changed, 400, "M_INVALID_PARAM")
    for params in ({"limit": "0"}, {"limit": "x"}, {"max_depth": "-1"}, {"suggested_only": "yes"}, {"from": "zz"}):
        await expect_error(await server.api("GET", H.format(space), alice, params=params), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("GET", H.format("not-a-room")), 401, "M_MISSING_TOKEN")

"""Inviting by e-mail address through an identity server (client-server API
"Third-party invites"; ``/3pid/onbind``; ``third_party_signed`` joins), against a
real identity server over HTTPS."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from tests.homeserver.room_helpers import create_room
from tests.support.identity_server import IdentityServer, serve_identity_server
from tests.support.server import RunningServer, serve_homeserver


def _config(make_config: Any, ids: IdentityServer) -> Any:
    return make_config(identity={"allowed_servers": ids.name, "ca_file": ids.ca_file})


def _invite(ids: IdentityServer, address: str) -> dict[str, Any]:
    return {"id_server": ids.name, "id_access_token": ids.access_token, "medium": "email", "address": address}


async def _member(server: RunningServer, account: Any, room_id: str, user_id: str) -> Any:
    return await server.api("GET", f"rooms/{quote(room_id)}/state/m.room.member/{quote(user_id)}", account)


async def test_unbound_address_is_invited_once_bound(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice, bob = await server.register(), await server.register()
        room = await create_room(server, alice, preset="private_chat")
        invited = await server.api("POST", f"rooms/{quote(room)}/invite", alice, json=_invite(ids, "bob@example.test"))
        assert invited.status_code == 200, invited.text
        state = (await server.api("GET", f"rooms/{quote(room)}/state", alice)).json()
        tpi = [e for e in state if e["type"] == "m.room.third_party_invite"]
        assert len(tpi) == 1 and tpi[0]["state_key"] == "tok1"
        assert tpi[0]["content"]["display_name"] == "Bob"
        assert tpi[0]["content"]["public_keys"][0]["public_key"] == ids.public_key
        # Not a member before the address is bound; an invite-only room keeps Bob out.
        assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 403

        notified = await ids.bind_and_notify(server.base_url, "email", "bob@example.test", bob.user_id)
        assert notified.status_code == 200, notified.text
        member = await _member(server, alice, room, bob.user_id)
        assert member.json()["membership"] == "invite"
        assert member.json()["third_party_invite"]["display_name"] == "Bob"
        assert member.json()["third_party_invite"]["signed"]["token"] == "tok1"
        assert (await server.api("POST", f"join/{quote(room)}", bob, json={})).status_code == 200
        assert (await _member(server, alice, room, bob.user_id)).json()["membership"] == "join"


async def test_bound_address_is_invited_directly_also_from_create_room(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice, bob = await server.register(), await server.register()
        ids.bindings[("email", "bob@example.test")] = bob.user_id
        room = await create_room(server, alice, preset="private_chat", invite_3pid=[_invite(ids, "bob@example.test")])
        assert (await _member(server, alice, room, bob.user_id)).json()["membership"] == "invite"
        state = (await server.api("GET", f"rooms/{quote(room)}/state", alice)).json()
        assert not [e for e in state if e["type"] == "m.room.third_party_invite"]
        # A bad entry is refused before any room is created.
        before = (await server.api("GET", "joined_rooms", alice)).json()["joined_rooms"]
        bad = await server.api("POST", "createRoom", alice, json={"invite_3pid": [{"medium": "email"}]})
        assert bad.status_code == 400 and bad.json()["errcode"] == "M_MISSING_PARAM"
        assert (await server.api("GET", "joined_rooms", alice)).json()["joined_rooms"] == before


async def test_onbind_with_a_wrong_or_revoked_key_invites_nobody(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice, bob, carol = await server.register(), await server.register(), await server.register()
        room = await create_room(server, alice, preset="private_chat")
        await server.api("POST", f"rooms/{quote(room)}/invite", alice, json=_invite(ids, "bob@example.test"))
        published = ids.public_key
        ids.rotate_key()  # signs with a key the room's invite did not publish
        wrong = await ids.bind_and_notify(server.base_url, "email", "bob@example.test", bob.user_id)
        assert wrong.status_code == 403 and wrong.json()["errcode"] == "M_FORBIDDEN"
        assert (await _member(server, alice, room, bob.user_id)).status_code == 404

        room2 = await create_room(server, alice, preset="private_chat")
        ids.invites.clear()
        await server.api("POST", f"rooms/{quote(room2)}/invite", alice, json=_invite(ids, "carol@example.test"))
        ids.valid_keys.discard(ids.public_key)  # the identity server revoked the key it signed with
        revoked = await ids.bind_and_notify(server.base_url, "email", "carol@example.test", carol.user_id)
        assert revoked.status_code == 403
        assert (await _member(server, alice, room2, carol.user_id)).status_code == 404
        assert published != ids.public_key


async def test_join_with_third_party_signed(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice, bob, mallory = await server.register(), await server.register(), await server.register()
        room = await create_room(server, alice, preset="private_chat")
        await server.api("POST", f"rooms/{quote(room)}/invite", alice, json=_invite(ids, "bob@example.test"))
        signed = ids.sign({"mxid": bob.user_id, "sender": alice.user_id, "token": "tok1"})
        # Someone else's signature is no use to Mallory.
        stolen = await server.api("POST", f"rooms/{quote(room)}/join", mallory, json={"third_party_signed": signed})
        assert stolen.status_code == 403
        forged = dict(signed, signatures={ids.name: {"ed25519:0": "A" * 86}})
        bad = await server.api("POST", f"join/{quote(room)}", bob, json={"third_party_signed": forged})
        assert bad.status_code == 403
        joined = await server.api("POST", f"join/{quote(room)}", bob, json={"third_party_signed": signed})
        assert joined.status_code == 200, joined.text
        assert (await _member(server, alice, room, bob.user_id)).json()["membership"] == "join"
        assert (await _member(server, alice, room, mallory.user_id)).status_code == 404


async def test_bad_third_party_invites(make_config: Any, tmp_path: Path) -> None:
    async with serve_identity_server(tmp_path) as ids, serve_homeserver(_config(make_config, ids)) as server:
        alice, outsider = await server.register(), await server.register()
        room = await create_room(server, alice, preset="private_chat")
        missing = await server.api("POST", f"rooms/{quote(room)}/invite", alice,
                                   json={"id_server": ids.name, "medium": "email", "address": "x@example.test"})
        assert missing.status_code == 400 and missing.json()["errcode"] == "M_MISSING_PARAM"
        untrusted = await server.api("POST", f"rooms/{quote(room)}/invite", alice,
                                     json=dict(_invite(ids, "x@example.test"), id_server="other.example"))
        assert untrusted.status_code == 400 and untrusted.json()["errcode"] == "M_SERVER_NOT_TRUSTED"
        stranger = await server.api("POST", f"rooms/{quote(room)}/invite", outsider, json=_invite(ids, "x@example.test"))
        assert stranger.status_code == 403
        assert ids.invites == {}  # nothing was stored for refused invites
        garbage = await server.api("POST", "/_matrix/federation/v1/3pid/onbind", json={"mxid": 5})
        assert garbage.status_code == 400 and garbage.json()["errcode"] == "M_BAD_JSON"


async def test_without_identity_servers_third_party_invites_are_refused(server: RunningServer) -> None:
    alice = await server.register()
    room = await create_room(server, alice)
    refused = await server.api("POST", f"rooms/{quote(room)}/invite", alice, json={
        "id_server": "id.example", "id_access_token": "t", "medium": "email", "address": "x@example.test"})
    assert refused.status_code == 400 and "identity server" in refused.json()["error"]

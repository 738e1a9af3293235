"""Keys in /sync: one-time-key counts, the signed pre-key's age, device_lists; session reset to-device."""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import quote

from tests.homeserver.test_keys import PARLEY_OTK, _x25519_b64, login, upload, upload_device
from tests.support.server import Account, RunningServer


async def _sync(server: RunningServer, account: Account, since: str | None = None, wait_ms: int = 0) -> Any:
    params: dict[str, Any] = {"timeout": wait_ms}
    if since:
        params["since"] = since
    response = await server.api("GET", "sync", account, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def _until_waiting(server: RunningServer, account: Account) -> None:
    """Until ``account``'s long-poll waits (registered and past its first build)."""
    notifier = server.hs.services.notifier
    for _ in range(2000):
        if account.user_id in notifier._waiters and notifier.pending_waiters == 0:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the long-poll never started waiting")


async def _shared_room(server: RunningServer, owner: Account, *others: Account) -> str:
    response = await server.api("POST", "createRoom", owner, json={"preset": "private_chat"})
    assert response.status_code == 200, response.text
    room_id = response.json()["room_id"]
    for other in others:
        await _join(server, owner, other, room_id)
    return str(room_id)


async def _join(server: RunningServer, inviter: Account, joiner: Account, room_id: str) -> None:
    invited = await server.api("POST", f"rooms/{quote(room_id)}/invite", inviter, json={"user_id": joiner.user_id})
    assert invited.status_code == 200, invited.text
    joined = await server.api("POST", f"join/{quote(room_id)}", joiner, json={})
    assert joined.status_code == 200, joined.text


async def test_counts_fallback_types_and_spk_age_in_every_sync(server: RunningServer) -> None:
    alice = await server.register("alice")
    first = await _sync(server, alice)
    assert first["device_one_time_keys_count"] == {"signed_curve25519": 0}
    assert first["device_unused_fallback_key_types"] == []
    assert "im.parley.signed_pre_key_age_ms" not in first

    ident = await upload_device(server, alice, otks=5)
    await upload(server, alice, {"fallback_keys": {f"{PARLEY_OTK}:FB": ident.sign({"key": _x25519_b64()})}})
    second = await _sync(server, alice, since=first["next_batch"])
    assert second["device_one_time_keys_count"] == {PARLEY_OTK: 5, "signed_curve25519": 0}
    assert second["device_unused_fallback_key_types"] == [PARLEY_OTK]
    assert second["im.parley.signed_pre_key_age_ms"] >= 0
    assert isinstance(second["im.parley.signed_pre_key_created_ts"], int)
    # Another device of the same user has its own counts.
    phone = await login(server, alice, "PHONE")
    assert (await _sync(server, phone))["device_one_time_keys_count"] == {"signed_curve25519": 0}


async def test_device_list_changes_reach_room_members(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    stranger = await server.register("stranger")
    ident = await upload_device(server, alice)
    await _shared_room(server, alice, bob)
    # Sharing a room makes Alice's keys visible to Bob, not to a stranger.
    body: dict[str, Any] = {"device_keys": {alice.user_id: []}}
    assert alice.device_id in (await server.api("POST", "keys/query", bob, json=body)).json()["device_keys"][alice.user_id]
    assert (await server.api("POST", "keys/query", stranger, json=body)).json()["device_keys"][alice.user_id] == {}

    bob_since = (await _sync(server, bob))["next_batch"]
    stranger_since = (await _sync(server, stranger))["next_batch"]
    # Bob is long-polling when Alice rotates her signed pre-key: he is woken with the change.
    timeout_ms = 20_000
    waiting = asyncio.create_task(_sync(server, bob, since=bob_since, wait_ms=timeout_ms))
    await _until_waiting(server, bob)
    await upload(server, alice, {"device_keys": ident.device_keys(ident.signed_pre_key(key_id=2))})
    # The change itself is news: the long-poll answers it, not its timeout.
    woken = await asyncio.wait_for(waiting, timeout_ms / 2 / 1000)
    assert alice.user_id in woken["device_lists"]["changed"]
    assert woken["device_lists"]["left"] == []
    # The stranger hears nothing.
    quiet = await _sync(server, stranger, since=stranger_since)
    assert quiet["device_lists"]["changed"] == []

    # A new device of Alice's, and its removal, are changes too.
    since = woken["next_batch"]
    phone = await login(server, alice, "PHONE")
    await upload_device(server, phone)
    got = await _sync(server, bob, since=since)
    assert alice.user_id in got["device_lists"]["changed"]
    changes = (await server.api("GET", "keys/changes", bob, params={"from": since, "to": got["next_batch"]})).json()
    assert alice.user_id in changes["changed"]
    # Nothing new: an empty incremental sync.
    again = await _sync(server, bob, since=got["next_batch"])
    assert again["device_lists"]["changed"] == []


async def test_joins_and_leaves_appear_in_device_lists(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    carol = await server.register("carol")
    room = await _shared_room(server, alice, bob)
    since = (await _sync(server, bob))["next_batch"]
    await _join(server, alice, carol, room)
    after_join = await _sync(server, bob, since=since)
    assert carol.user_id in after_join["device_lists"]["changed"]
    # Carol, newly sharing a room, should refresh everyone's device list.
    carol_first = await _sync(server, carol)
    assert "device_lists" in carol_first

    since = after_join["next_batch"]
    left = await server.api("POST", f"rooms/{quote(room)}/leave", carol, json={})
    assert left.status_code == 200, left.text
    after_leave = await _sync(server, bob, since=since)
    assert carol.user_id in after_leave["device_lists"]["left"]
    assert carol.user_id not in after_leave["device_lists"]["changed"]
    changes = (await server.api("GET", "keys/changes", bob,
                                params={"from": since, "to": after_leave["next_batch"]})).json()
    assert carol.user_id in changes["left"]
    # Carol can no longer see Bob's keys.
    body: dict[str, Any] = {"device_keys": {bob.user_id: []}}
    await upload_device(server, bob)
    assert (await server.api("POST", "keys/query", carol, json=body)).json()["device_keys"][bob.user_id] == {}


async def test_own_join_lists_the_rooms_members_as_changed(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    room = await _shared_room(server, alice)
    since = (await _sync(server, bob))["next_batch"]
    await _join(server, alice, bob, room)
    got = await _sync(server, bob, since=since)
    assert alice.user_id in got["device_lists"]["changed"]


async def test_session_reset_travels_as_a_to_device_event(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    await _shared_room(server, alice, bob)
    since = (await _sync(server, bob))["next_batch"]
    content = {"reason": "decryption failed", "device_id": alice.device_id}
    response = await server.api(
        "PUT", "sendToDevice/im.parley.session_reset/txn1", alice,
        json={"messages": {bob.user_id: {bob.device_id: content}}},
    )
    assert response.status_code == 200, response.text
    got = await _sync(server, bob, since=since)
    events = got["to_device"]["events"]
    assert [(e["type"], e["sender"], e["content"]) for e in events] == [
        ("im.parley.session_reset", alice.user_id, content)
    ]
    # Delivered once.
    assert (await _sync(server, bob, since=got["next_batch"]))["to_device"]["events"] == []


async def test_logging_out_a_room_members_device_is_a_change(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    await _shared_room(server, alice, bob)
    phone = await login(server, alice, "PHONE")
    await upload_device(server, phone, otks=3)
    since = (await _sync(server, bob))["next_batch"]
    logout = await server.api("POST", "logout", phone)  # deletes the device
    assert logout.status_code == 200
    got = await _sync(server, bob, since=since)
    assert alice.user_id in got["device_lists"]["changed"]
    devices = (await server.api("POST", "keys/query", bob, json={"device_keys": {alice.user_id: []}})).json()
    assert "PHONE" not in devices["device_keys"][alice.user_id]


async def test_keys_reach_an_invited_user_and_back(server: RunningServer) -> None:
    """Element encrypts its first DM message while the other person is only invited:
    both sides must see each other's keys then (as on Synapse); strangers still see nothing."""
    alice = await server.register("alice")
    bob = await server.register("bob")
    stranger = await server.register("stranger")
    await upload_device(server, alice, otks=1)
    await upload_device(server, bob, otks=1)
    room = (await server.api("POST", "createRoom", alice, json={"preset": "private_chat"})).json()["room_id"]
    invited = await server.api("POST", f"rooms/{quote(room)}/invite", alice, json={"user_id": bob.user_id})
    assert invited.status_code == 200
    for asker, target in ((alice, bob), (bob, alice)):
        query = await server.api("POST", "keys/query", asker, json={"device_keys": {target.user_id: []}})
        assert set(query.json()["device_keys"][target.user_id]) == {target.device_id}
        claim = await server.api("POST", "keys/claim", asker, json={
            "one_time_keys": {target.user_id: {target.device_id: PARLEY_OTK}}})
        assert claim.json()["one_time_keys"][target.user_id][target.device_id], claim.text
    hidden = await server.api("POST", "keys/query", stranger, json={"device_keys": {bob.user_id: []}})
    assert hidden.json()["device_keys"][bob.user_id] == {}


async def test_new_and_renamed_devices_are_device_list_changes(server: RunningServer) -> None:
    alice = await server.register("alice")
    bob = await server.register("bob")
    await _shared_room(server, alice, bob)
    since = (await _sync(server, bob))["next_batch"]
    await login(server, alice, "NEWDEVICE")
    changed = await _sync(server, bob, since=since)
    assert alice.user_id in changed["device_lists"]["changed"]
    since = changed["next_batch"]
    renamed = await server.api("PUT", "devices/NEWDEVICE", alice, json={"display_name": "Kitchen"})
    assert renamed.status_code == 200
    again = await _sync(server, bob, since=since)
    assert alice.user_id in again["device_lists"]["changed"]

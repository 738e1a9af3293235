"""One-time pre-keys: when peers have claimed all but a few, the client uploads more."""

from __future__ import annotations

import asyncio

from client_tk.core.client import ChatClient
from client_tk.core.keys import OTK_ALGORITHM, OTK_MIN, OTK_TARGET
from client_tk.core.transport import CLIENT_V3
from tests.client.conftest import MakeClient, bodies, until
from tests.support.server import RunningServer


async def server_count(client: ChatClient) -> int:
    """The server's count for this device (an upload with nothing to add answers it)."""
    body = await client.http.post(CLIENT_V3 + "/keys/upload", {})
    return int(body.get("one_time_key_counts", {}).get(OTK_ALGORITHM, 0))


async def settled_count(client: ChatClient) -> int:
    """The count once the upload that follows the local commit of new keys has landed."""
    for _ in range(200):
        count = await server_count(client)
        if count >= OTK_MIN:
            return count
        await asyncio.sleep(0.05)
    return count


async def test_one_time_keys_are_topped_up(server: RunningServer, new_user: MakeClient) -> None:
    alice, bob = await new_user("alice"), await new_user("bob")
    await until(lambda: len(alice.keys.otks) >= OTK_TARGET, what="first one-time keys")
    assert await settled_count(alice) == OTK_TARGET
    room = await bob.create_dm(alice.user_id)  # sharing a room lets bob claim alice's keys
    await until(lambda: room in alice.rooms, what="invite")
    await alice.accept(room)

    # Alice is offline while bob drains her keys, so that her next /sync sees the whole drain:
    # a sync in the middle of it (a loaded machine) tops up early, and the rest of the drain
    # then never takes her below OTK_MIN again.
    await alice.stop()
    claimed: set[str] = set()
    drain = OTK_TARGET - OTK_MIN + 5
    for _ in range(drain):
        body = await bob.http.post(CLIENT_V3 + "/keys/claim", {
            "one_time_keys": {alice.user_id: {alice.device_id: OTK_ALGORITHM}}})
        claimed |= set(body["one_time_keys"][alice.user_id][alice.device_id])
    assert len(claimed) == drain  # a different key every time
    alice.start()
    # Alice's next /sync reports fewer than OTK_MIN; she uploads up to the target again.
    await until(lambda: len(alice.keys.otks) >= OTK_TARGET + drain, what="alice generates more")
    count = await settled_count(alice)
    assert count == OTK_TARGET, count

    # A newcomer's session starts from one of the new keys and reads fine.
    carol = await new_user("carol")
    dm = await carol.create_dm(alice.user_id)
    await until(lambda: dm in alice.rooms, what="carol's invite")
    await alice.accept(dm)
    await carol.send_text(dm, "hello with a fresh one-time key")
    await until(lambda: "hello with a fresh one-time key" in bodies(alice, dm), what="alice reads carol")
    assert await server_count(alice) == OTK_TARGET - 1

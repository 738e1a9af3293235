"""Removing one of your devices: interactive auth, and peers stop encrypting to it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from client_tk.core.account import approve_pairing, finish_pairing, start_pairing
from client_tk.core.client import ChatClient
from client_tk.core.transport import CLIENT_V3, q
from common.errors import MatrixError
from tests.client.conftest import PASSWORD, MakeClient, Screens, bodies, options, until
from tests.support.server import RunningServer


async def pair(server: RunningServer, old: ChatClient, root: Path) -> ChatClient:
    opts = options(server.base_url, root)
    request = await start_pairing(opts, old.user_id)
    screens = Screens()
    waiting = asyncio.create_task(finish_pairing(opts, request, PASSWORD, confirm=screens.side("new"),
                                                 poll_interval=0.1))
    await approve_pairing(old, request.code, confirm=screens.side("old"))
    return await waiting


async def raw_event(client: ChatClient, room: str, event_id: str) -> dict[str, Any]:
    return await client.http.get(f"{CLIENT_V3}/rooms/{q(room)}/event/{q(event_id)}")


async def test_delete_device_stops_delivery(server: RunningServer, new_user: MakeClient,
                                            clients: list[ChatClient], tmp_path: Path) -> None:
    alice, bob, carol = await new_user("alice"), await new_user("bob"), await new_user("carol")
    alice2 = await pair(server, alice, tmp_path / "alice-dev2")
    clients.append(alice2)
    alice2.start()
    gone = alice2.device_id
    dm = await bob.create_dm(alice.user_id)
    group = await carol.create_group("Removed devices", [alice.user_id])
    for room in (dm, group):
        await until(lambda r=room: r in alice.rooms, what="invite")  # type: ignore[misc]
        await alice.accept(room)
        await until(lambda r=room: r in alice2.rooms and alice2.rooms[r].membership == "join",  # type: ignore[misc]
                    what="second device joined")
    first = await bob.send_text(dm, "dm before removal")
    await carol.send_text(group, "group before removal")
    await until(lambda: "dm before removal" in bodies(alice2, dm), what="device 2 reads the DM")
    await until(lambda: "group before removal" in bodies(alice2, group), what="device 2 reads the group")
    assert f"{alice.user_id}|{gone}" in (await raw_event(bob, dm, first))["content"]["ciphertext"]

    # A wrong password is refused and the device stays.
    with pytest.raises(MatrixError) as wrong:
        await alice.delete_device(gone, "not the password")
    assert wrong.value.status in (401, 403)
    assert gone in {d["device_id"] for d in await alice.list_devices()}

    await alice.delete_device(gone, PASSWORD)  # first call: 401 + session, retried with the password
    assert gone not in {d["device_id"] for d in await alice.list_devices()}
    with pytest.raises(MatrixError) as dead:
        await alice2.http.get(CLIENT_V3 + "/account/whoami")
    assert dead.value.errcode == "M_UNKNOWN_TOKEN"
    await until(lambda: alice2.connection.value == "offline", what="removed device goes offline")

    # Peers learn of the device-list change (through /sync: until then a send still
    # encrypts to the device, as in any Matrix client) and stop encrypting to it.
    for peer in (bob, carol):
        await until(lambda p=peer: alice.user_id in p.directory.outdated()  # type: ignore[misc]
                    or gone not in p.directory.device_ids(alice.user_id), what="peer told of the removal")
    after = await bob.send_text(dm, "dm after removal")
    ciphertext = (await raw_event(bob, dm, after))["content"]["ciphertext"]
    assert f"{alice.user_id}|{gone}" not in ciphertext
    assert f"{alice.user_id}|{alice.device_id}" in ciphertext
    await until(lambda: "dm after removal" in bodies(alice, dm), what="remaining device reads the DM")

    shared_before = set((carol.crypto.outbound(group) or {}).get("shared_with", []))
    assert any(gone in k for k in shared_before)
    await carol.send_text(group, "group after removal")
    record = carol.crypto.outbound(group)
    assert record is not None
    assert not any(k.endswith(gone) for k in record["shared_with"]), record["shared_with"]
    await until(lambda: "group after removal" in bodies(alice, group), what="remaining device reads the group")
    assert "dm after removal" not in bodies(alice2, dm)
    assert "group after removal" not in bodies(alice2, group)

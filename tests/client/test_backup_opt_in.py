"""The server-side key backup is an explicit opt-in with a recovery key, rotated on device removal."""

from __future__ import annotations

from pathlib import Path

import pytest

from client_tk.core.client import ChatClient
from client_tk.core.transport import CLIENT_V3
from common.errors import MatrixError
from tests.client.conftest import PASSWORD, MakeClient, bodies, until
from tests.client.test_multidevice import joined_dm
from tests.client.test_safety_number_client import reinstall
from tests.support.server import RunningServer


async def test_recovery_key_restores_rotation_closes_a_removed_device_disable_deletes(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    assert not alice.backup.enabled
    with pytest.raises(MatrixError):  # no backup on the server until someone opts in
        await alice.http.get(CLIENT_V3 + "/room_keys/version")
    recovery_key = await alice.backup.enable()
    room = await joined_dm(alice, bob)
    for text in ("backed up one", "backed up two"):
        await bob.send_text(room, text)
    await until(lambda: bodies(alice, room) == ["backed up one", "backed up two"], what="alice reads")
    await until(lambda: not alice.store.items("backup_queue"), what="keys uploaded")

    # A device with nothing but the password and the written-down recovery key reads the history.
    spare = await reinstall(server, alice, tmp_path / "alice-spare")
    clients.append(spare)
    with pytest.raises(MatrixError) as wrong:
        await spare.backup.restore_with_recovery_key("0000 " * 14)
    assert wrong.value.errcode == "M_INVALID_PARAM"
    assert await spare.backup.restore_with_recovery_key(recovery_key.lower()) == 2
    await spare.load_history(room)
    assert bodies(spare, room) == ["backed up one", "backed up two"]

    # Removing that device rotates the backup: its secret no longer matches what is uploaded.
    old = alice.backup.secret()
    await alice.delete_device(spare.device_id, PASSWORD)
    new = alice.backup.secret()
    assert old is not None and new is not None and new[0] != old[0] and new[1] != old[1]
    await bob.send_text(room, "after the rotation")
    await until(lambda: "after the rotation" in bodies(alice, room), what="alice reads")
    await until(lambda: not alice.store.items("backup_queue"), what="uploaded under the new key")
    assert await spare.backup.restore() == 0  # the removed device's secret opens no current version

    await alice.backup.disable()
    assert not alice.backup.enabled
    with pytest.raises(MatrixError) as gone:
        await alice.http.get(CLIENT_V3 + "/room_keys/version")
    assert gone.value.status == 404

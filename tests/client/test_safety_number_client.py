"""A contact's new identity key is never used silently (issue 15): sending is held until accepted.

Bob loses his device and starts again on a new one with a new identity key (no
pairing).  Alice's client sees a device under another key: it emits the
"safety number changed" notice, refuses to send to Bob (nothing is encrypted or
queued), refuses an accept of a key that was not shown, and after the user
accepts the shown key, messages flow again both ways.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from client_tk.core import account as acct
from client_tk.core.client import ChatClient
from client_tk.core.devices import SAFETY_NUMBER_CHANGED, SafetyNumberChangedError
from client_tk.core.events import ClientEvent, IdentityChanged
from common.crypto.account_keys import AccountKeys
from common.errors import MatrixError
from tests.client.conftest import PASSWORD, MakeClient, bodies, options, until
from tests.client.test_multidevice import joined_dm
from tests.support.server import RunningServer


async def reinstall(server: RunningServer, old: ChatClient, root: Path) -> ChatClient:
    """A new device of the same account with a *new* identity key (the old one is lost)."""
    opts = options(server.base_url, root)
    keys = AccountKeys.generate()  # a new identity (and login and storage key)
    result = await acct._login_request(opts, old.user_id, [keys.login_key], PASSWORD, None, "password")
    store = acct._open_store(opts, old.user_id)
    return await acct._finish(opts, store, acct._keyring(opts, store, keys), old.user_id, result["device_id"],
                              result["access_token"], PASSWORD)


async def test_changed_identity_blocks_sending_until_the_shown_key_is_accepted(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await joined_dm(alice, bob)
    await alice.send_text(room, "hello old bob")
    await until(lambda: "hello old bob" in bodies(bob, room), what="first message")
    seen: list[ClientEvent] = []
    alice.bus.subscribe(seen.append)

    bob_new = await reinstall(server, bob, tmp_path / "bob-new")
    clients.append(bob_new)
    await bob_new.delete_device(bob.device_id, PASSWORD)
    await bob.stop()
    bob_new.start()
    await until(lambda: room in bob_new.rooms, what="room on bob's new device")
    await until(lambda: bob.user_id in alice.directory.outdated(), what="alice told of bob's devices")

    with pytest.raises(SafetyNumberChangedError) as refused:
        await alice.send_text(room, "must not go to an unverified key")
    assert refused.value.errcode == SAFETY_NUMBER_CHANGED and refused.value.user_ids == [bob.user_id]
    assert "safety number with " + bob.user_id + " changed" in str(refused.value)
    assert alice.outgoing(room) == []  # held: nothing was encrypted or queued
    notices = [e for e in seen if isinstance(e, IdentityChanged)]
    assert [n.user_id for n in notices] == [bob.user_id]
    assert notices[0].new_key == bob_new.keys.account_public.to_b64()
    assert [c.user_id for c in alice.safety_number_changes()] == [bob.user_id]

    # Accepting a key other than the one shown is refused; the block stays.
    with pytest.raises(MatrixError) as wrong:
        await alice.accept_safety_number(bob.user_id, bob.keys.account_public.to_b64())
    assert wrong.value.errcode == "M_INVALID_PARAM"
    with pytest.raises(SafetyNumberChangedError):
        await alice.send_text(room, "still held")

    await alice.accept_safety_number(bob.user_id, notices[0].new_key)
    assert alice.safety_number_changes() == []
    await alice.send_text(room, "hello new bob")
    await until(lambda: "hello new bob" in bodies(bob_new, room), what="message to the new key")
    await bob_new.send_text(room, "new bob answers")
    await until(lambda: "new bob answers" in bodies(alice, room), what="answer from the new key")
    assert "must not go to an unverified key" not in bodies(bob_new, room)

"""Store format 2 in the client: separate keys for separate jobs (issue 15).

Real homeserver, real clients, real crypto:

* a registered device writes format 2: identity seed, storage key and login key
  are independent, the identity seed alone opens no record, the server knows
  the independent login key (the one format 1 derived from the identity seed
  logs nobody in);
* a format-1 store of a real account (its records rooted at the identity seed,
  the server holding the derived login key) is migrated at login, losslessly:
  its cached history, ratchet sessions and access token carry on, and the
  server's login key is replaced;
* a paired device draws its own storage key; removing a device rotates the login
  key, so the removed device's copy of it logs in no more;
* each device has its own identity key, certified by the account key (the one
  contacts pin): no device holds another's identity secret, a contact verifies
  both through one safety number, an uncertified key is no device of the account.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_tk.core import account as acct
from client_tk.core.account_keyring import public_b64
from client_tk.core.client import ChatClient
from client_tk.core.crypto import parse_device_keys
from client_tk.core.devices import account_key_of
from client_tk.core.store import account_dir_name
from client_tk.core.store_migration import _Keys, store_format
from common.crypto import CryptoError, WrongPassword, decrypt_local, derive_local_storage_key, seal_identity
from common.crypto import primitives as P
from common.crypto.account_keys import AccountKeys, LegacyKeys
from common.crypto.serialization import b64e
from common.errors import MatrixError
from tests.client.conftest import FAST_KDF, PASSWORD, MakeClient, bodies, options, until
from tests.client.test_multidevice import joined_dm, pair
from tests.support.server import RunningServer


def store_path(client: ChatClient) -> Path:
    return client.store.path


def rows(path: Path) -> list[tuple[str, str, bytes]]:
    db = sqlite3.connect(path)
    try:
        return ([(ns, k, bytes(b)) for ns, k, b in db.execute("SELECT ns, key, blob FROM kv")]
                + [("messages", str(i), bytes(b)) for i, b in db.execute("SELECT id, blob FROM messages")])
    finally:
        db.close()


def opens_under(root: bytes, ns: str, hkey: str, blob: bytes) -> bool:
    try:
        decrypt_local(derive_local_storage_key(root, "record:" + ns), blob, context=f"{ns}\x00{hkey}".encode())
    except CryptoError:
        return False
    return True


async def server_login_key(server: RunningServer, user_id: str) -> str | None:
    db = server.hs.database
    with db.activated():
        row = await db.fetch_one("SELECT login_key FROM users WHERE user_id = ?", (user_id,))
    return None if row is None else row[0] if not isinstance(row, dict) else row["login_key"]


async def key_login_refused(server: RunningServer, tmp_path: Path, user_id: str,
                            keys: list[Ed25519PrivateKey]) -> bool:
    try:
        await acct._login_request(options(server.base_url, tmp_path / "probe"), user_id, keys, PASSWORD,
                                  None, "key")
    except MatrixError as exc:
        return exc.errcode == "M_FORBIDDEN"
    return False


async def test_a_registered_device_writes_format_2_with_independent_keys(
    server: RunningServer, new_user: MakeClient, tmp_path: Path
) -> None:
    alice = await new_user("alice", start=False)
    ring = alice.account
    assert ring is not None and ring.registered
    keys = ring.keys
    assert len({keys.identity_seed, keys.storage_key, keys.login_seed}) == 3
    db = sqlite3.connect(store_path(alice))
    assert store_format(db) == 2
    assert db.execute("SELECT value FROM meta WHERE name='identity'").fetchone() is None
    db.close()
    found = rows(store_path(alice))
    assert found
    for ns, hkey, blob in found:  # every record opens under the storage key, none under the seed
        assert opens_under(keys.storage_key, ns, hkey, blob)
        assert not opens_under(keys.identity_seed, ns, hkey, blob)
    # The server holds the independent login key; the one format 1 derived from the seed is refused.
    assert await server_login_key(server, alice.user_id) == public_b64(keys.login_key)
    legacy = LegacyKeys(keys.identity_seed)
    assert await key_login_refused(server, tmp_path, alice.user_id, [P.load_ed25519_private(legacy.login_seed)])


def downgrade_to_format_1(client_store: Path, keys: AccountKeys) -> None:
    """Rewrite a closed store exactly as format 1 laid it out: every record and index HMAC
    rooted at the identity seed, the identity seed alone in the password envelope."""
    new, old = _Keys(keys.storage_key), _Keys(keys.identity_seed)
    db = sqlite3.connect(client_store, isolation_level=None)
    kv = [(ns, hkey, new.open(ns, hkey, bytes(b))) for ns, hkey, b in db.execute("SELECT ns, key, blob FROM kv")]
    msgs = [(ts, new.open("messages", hid, bytes(b))) for ts, hid, b in db.execute("SELECT ts, id, blob FROM messages")]
    db.execute("BEGIN")
    db.execute("DELETE FROM kv")
    db.execute("DELETE FROM messages")
    for ns, _hkey, record in kv:
        if (ns, record["k"]) == ("account", "login_key"):
            continue  # format 1 had no such record
        hkey = old.hash(str(record["k"]))
        db.execute("INSERT INTO kv VALUES (?, ?, ?)", (ns, hkey, old.seal(ns, hkey, record)))
    for ts, value in msgs:
        hid = old.hash("event:" + str(value["event_id"]))
        db.execute("INSERT INTO messages VALUES (?, ?, ?, ?)",
                   (old.hash("room:" + str(value["room_id"])), ts, hid, old.seal("messages", hid, value)))
    db.execute("DELETE FROM meta WHERE name IN ('account_keys', 'store_format')")
    db.execute("INSERT INTO meta VALUES ('identity', ?)",
               (seal_identity(keys.identity, PASSWORD, params=FAST_KDF, allow_weak=True),))
    db.execute("COMMIT")
    db.close()


@pytest.mark.parametrize("token_still_valid", [True, False])
async def test_a_format_1_store_of_a_real_account_migrates_at_login(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path,
    token_still_valid: bool
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await joined_dm(alice, bob)
    await alice.send_text(room, "before the upgrade")
    await until(lambda: "before the upgrade" in bodies(bob, room), what="bob reads")
    await bob.send_text(room, "an answer in format 1")
    await until(lambda: "an answer in format 1" in bodies(alice, room), what="alice reads")
    assert alice.account is not None
    keys, path, device = alice.account.keys, store_path(alice), alice.device_id
    if not token_still_valid:
        await alice.http.post("/_matrix/client/v3/logout", {})
    await alice.close()
    clients.remove(alice)
    downgrade_to_format_1(path, keys)
    legacy = LegacyKeys(keys.identity_seed)
    legacy_login = P.load_ed25519_private(legacy.login_seed)
    db = server.hs.database
    with db.activated():  # what a format-1 client registered: the key derived from the seed
        await db.execute("UPDATE users SET login_key = ? WHERE user_id = ?",
                         (public_b64(legacy_login), alice.user_id))
    assert store_format(sqlite3.connect(path)) == 1

    opts = options(server.base_url, path.parent.parent)
    assert path.parent.name == account_dir_name(alice.user_id)
    with pytest.raises(WrongPassword):  # a wrong password changes nothing
        await acct.login(opts, alice.user_id, "wrong password")
    assert store_format(sqlite3.connect(path)) == 1
    again = await acct.login(opts, alice.user_id, PASSWORD)
    clients.append(again)
    assert again.account is not None and again.account.registered
    new_keys = again.account.keys
    assert new_keys.identity_seed == keys.identity_seed  # contacts keep their safety number
    assert new_keys.storage_key != keys.identity_seed and new_keys.login_seed != legacy.login_seed
    if token_still_valid:
        assert again.device_id == device
    assert store_format(sqlite3.connect(path)) == 2
    # Lossless: the cached history is there, and the ratchet sessions carry on both ways.
    assert bodies(again, room)[:2] == ["before the upgrade", "an answer in format 1"]
    again.start()
    await bob.send_text(room, "after your upgrade")
    await until(lambda: "after your upgrade" in bodies(again, room), what="the migrated device reads")
    await again.send_text(room, "still me")
    await until(lambda: "still me" in bodies(bob, room), what="bob reads the migrated device")
    # The identity seed alone opens nothing any more; the server knows only the new login key.
    for ns, hkey, blob in rows(path):
        assert not opens_under(keys.identity_seed, ns, hkey, blob)
    assert await server_login_key(server, alice.user_id) == public_b64(new_keys.login_key)
    assert await key_login_refused(server, tmp_path, alice.user_id, [legacy_login])


async def test_a_paired_device_has_its_own_storage_key_and_removal_rotates_the_login_key(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    second = await pair(server, alice, tmp_path / "alice-dev2")
    clients.append(second)
    assert alice.account is not None and second.account is not None
    first_keys, second_keys = alice.account.keys, second.account.keys
    assert second_keys.storage_key != first_keys.storage_key  # the storage key never left device 1
    assert second_keys.login_seed == first_keys.login_seed
    stolen_login = second_keys.login_key  # what the removed device keeps

    await alice.delete_device(second.device_id, PASSWORD)
    rotated = alice.account.keys
    assert rotated.login_seed != first_keys.login_seed and alice.account.registered
    assert rotated.identity_seed == first_keys.identity_seed
    assert rotated.storage_key == first_keys.storage_key
    assert await key_login_refused(server, tmp_path, alice.user_id, [stolen_login])
    # The rotated key is in the store's envelope: device 1 logs in with it after a restart.
    root = store_path(alice).parent.parent
    await alice.close()
    clients.remove(alice)
    back = await acct.login(options(server.base_url, root), alice.user_id, PASSWORD)
    clients.append(back)
    assert back.account is not None and back.account.keys == rotated
    relogin = await acct._login_request(options(server.base_url, tmp_path / "p2"), alice.user_id,
                                        [rotated.login_key], PASSWORD, None, "key")
    assert relogin["user_id"] == alice.user_id


async def test_paired_devices_have_their_own_identity_keys_certified_by_the_account_key(
    server: RunningServer, new_user: MakeClient, clients: list[ChatClient], tmp_path: Path
) -> None:
    alice = await new_user("alice")
    bob = await new_user("bob")
    room = await joined_dm(alice, bob)
    second = await pair(server, alice, tmp_path / "alice-dev2")
    clients.append(second)
    second.start()
    assert alice.account is not None and second.account is not None
    account = alice.account.keys.identity.public
    first_key, second_key = alice.keys.identity.public, second.keys.identity.public
    assert len({first_key.to_b64(), second_key.to_b64(), account.to_b64()}) == 3  # no shared device key
    assert alice.keys.account_public == second.keys.account_public == account
    # The second device's whole store holds no secret of the first device's identity.
    first_seed = b64e(alice.keys.identity.seed)
    for ns, hkey, blob in rows(store_path(second)):
        plain = decrypt_local(derive_local_storage_key(second.account.keys.storage_key, "record:" + ns), blob,
                              context=f"{ns}\x00{hkey}".encode())
        assert first_seed.encode() not in plain
    # Bob pins one account key (one safety number) and verifies both devices through it.
    await bob.learn_devices([alice.user_id], refresh=True)
    assert bob.directory.identity(alice.user_id) == account
    verified = {d.device_id: d.identity for d in bob.directory.verified([alice.user_id])}
    assert verified == {alice.device_id: first_key, second.device_id: second_key}
    assert not bob.directory.changed()
    await bob.send_text(room, "to both of your devices")
    await until(lambda: "to both of your devices" in bodies(alice, room), what="device 1 reads")
    await until(lambda: "to both of your devices" in bodies(second, room), what="device 2 reads")
    await second.send_text(room, "from my second device")
    await until(lambda: "from my second device" in bodies(bob, room), what="bob reads device 2")
    # A device whose keys name the account key without its signature is no device of Alice's.
    forged = dict(bob.store.get("devices", alice.user_id)["devices"][second.device_id])
    forged["signatures"] = {alice.user_id: {f"ed25519:{second.device_id}":
                                            forged["signatures"][alice.user_id][f"ed25519:{second.device_id}"]}}
    info = parse_device_keys(forged, alice.user_id, second.device_id)
    assert info is not None and account_key_of(info) is None

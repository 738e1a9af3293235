"""This device's account keys (store format 2) and what the server knows of the login key.

The local store keeps :class:`~common.crypto.account_keys.AccountKeys` -- four
independent keys, none derived from another -- as a password envelope in
``meta.account_keys`` (with ``meta.store_format = 2``):

* the **identity seed** (what contacts pin; sessions and signatures),
* the **storage key**: the root of every record key of this store; drawn on
  this device, never sent anywhere (a paired device draws its own),
* the **login seed**: the Ed25519 key of key-based login (``PUT
  .../im.parley/account/login_key`` holds its public half on the server),
* the opt-in backup secret is the key backup's own record (:mod:`.backup`).

``kv`` ``account``/``login_key`` records whether the server already has the
current login key (``uploaded``) and, until it has, the previous login seed it
may still hold: after a format-1 migration that is the key the old format
derived from the identity seed; after a rotation, the one before it.  Login
tries the current key first and that previous one second; once logged in,
:meth:`AccountKeyring.ensure_registered` replaces the server's key (the
request needs the password: re-authentication) and forgets the previous one.

:meth:`AccountKeyring.rotate_login` (run when another device is removed):
a new login seed, sealed into the envelope in the **same** transaction as the
record that keeps the old one until the server has the new one -- a crash at
any point leaves a key the server accepts.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from client_tk.core.crypto import b64, unb64
from client_tk.core.store import LocalStore
from client_tk.core.store_migration import LOGIN_RECORD, migrate_store
from client_tk.core.transport import UNSTABLE, Transport
from common.canonical_json import unpadded_b64encode
from common.crypto import DEFAULT_KDF, KdfParams
from common.crypto import primitives as P
from common.crypto.account_keys import STORE_FORMAT, AccountKeys, seal_account_keys
from common.errors import MatrixError

JsonDict = dict[str, Any]
LOGIN_KEY_PATH = UNSTABLE + "/account/login_key"


def open_account_keys(path: Path, password: str, *, kdf: KdfParams = DEFAULT_KDF,
                      allow_weak: bool = False) -> AccountKeys:
    """Open the store's account keys; a format-1 store is migrated to format 2 first
    (every record re-encrypted in one transaction, see :mod:`.store_migration`)."""
    return migrate_store(path, password, kdf=kdf, allow_weak=allow_weak)


def public_b64(key: Ed25519PrivateKey) -> str:
    return unpadded_b64encode(P.ed25519_public_bytes(key))


class AccountKeyring:
    """The unlocked :class:`AccountKeys` of one store, and the login key's server state."""

    def __init__(self, store: LocalStore, keys: AccountKeys, *, kdf: KdfParams = DEFAULT_KDF,
                 allow_weak: bool = False) -> None:
        self.store = store
        self.keys = keys
        self.kdf = kdf
        self.allow_weak = allow_weak

    def _record(self) -> JsonDict:
        ns, name = LOGIN_RECORD
        return self.store.get(ns, name) or {"uploaded": True}

    @property
    def registered(self) -> bool:
        """Whether the server is known to hold the current login key."""
        return bool(self._record().get("uploaded", True))

    def login_keys(self) -> list[Ed25519PrivateKey]:
        """The keys to try for key login: the current one, then the one the server may still hold."""
        keys = [self.keys.login_key]
        previous = self._record().get("previous")
        if not self.registered and isinstance(previous, str):
            keys.append(P.load_ed25519_private(unb64(previous)))
        return keys

    async def sealed_meta(self, password: str) -> dict[str, bytes]:
        """The ``meta`` rows that hold these keys (the envelope costs a password KDF)."""
        sealed = await asyncio.to_thread(seal_account_keys, self.keys, password, params=self.kdf,
                                         allow_weak=self.allow_weak)
        return {"account_keys": sealed, "store_format": str(STORE_FORMAT).encode()}

    async def ensure_registered(self, http: Transport, user_id: str, password: str) -> None:
        """Give the server the current login key if it does not have it yet (re-authenticating
        with the password), then forget the previous one.  Committed on return."""
        if self.registered:
            return
        body: JsonDict = {"login_key": public_b64(self.keys.login_key)}
        try:
            await http.request("PUT", LOGIN_KEY_PATH, body, idempotent=True)
        except MatrixError as exc:
            if exc.status != 401 or "session" not in exc.extra:
                raise
            auth = {"type": "m.login.password", "session": exc.extra["session"], "password": password,
                    "identifier": {"type": "m.id.user", "user": user_id}}
            await http.request("PUT", LOGIN_KEY_PATH, {**body, "auth": auth}, idempotent=True)
        ns, name = LOGIN_RECORD
        self.store.put(ns, name, {"uploaded": True})
        await self.store.commit()

    async def rotate_login(self, http: Transport, user_id: str, password: str) -> None:
        """A new login key (another device was removed: the key it held stops working).

        The caller holds the engine's lock (no other batch is staged in the store)."""
        previous = self.keys.login_seed if self.registered else self._record().get("previous")
        new = self.keys.rotate_login()
        ns, name = LOGIN_RECORD
        self.store.put(ns, name, {"uploaded": False,
                                  "previous": b64(previous) if isinstance(previous, bytes) else previous})
        old, self.keys = self.keys, new
        try:
            await self.store.commit(meta=await self.sealed_meta(password))
        except BaseException:
            self.keys = old
            self.store.rollback()
            raise
        await self.ensure_registered(http, user_id, password)

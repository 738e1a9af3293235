"""The server-side key backup (``/room_keys``): **off unless the user turns it on**.

Without it, a message key lives only as long as the ratchet needs it, and a
new device gets its history once, at pairing (:mod:`client_tk.core.history`).
With it (:meth:`KeyBackup.enable`, which returns the recovery key the user
writes down), every message key ``K`` this device learns over a pairwise
session or a sender key is queued (in the store, so the queue survives a
crash) and uploaded after the batch commits as::

    PUT /room_keys/keys?version=V
    {"rooms": {room_id: {"sessions": {event_id: {
        "first_message_index": 0, "forwarded_count": 0, "is_verified": true,
        "session_data": {"ciphertext": <b64 encrypt_local(backup secret, K,
                                         context=room_id "|" event_id)>}}}}}}

The backup secret is 32 random bytes, independent of every other key,
shown once as a recovery key and handed to new devices by pairing; the
version's ``auth_data`` holds only an HMAC check value, so the server never
sees a key.  A new device (or one that typed the recovery key,
:meth:`KeyBackup.restore_with_recovery_key`) downloads the backup and then
reads old events through ``/messages``.  **The cost** (docs/SECURITY-MODEL.md
section 4): whoever holds the secret reads every backed-up message, whatever
the ratchets did.  :meth:`KeyBackup.rotate` (run when a device is removed)
starts a new secret and version: what is sealed afterwards is closed to the
removed device.
"""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

from client_tk.core.crypto import b64, unb64
from client_tk.core.transport import CLIENT_V3, TransportFailure
from common.crypto import CryptoError, decrypt_local, encrypt_local
from common.crypto import primitives as P
from common.crypto.account_keys import decode_recovery_key, encode_recovery_key
from common.errors import MatrixError

if TYPE_CHECKING:
    from client_tk.core.engine import ClientEngine

ALGORITHM = "im.parley.backup.v1"
JsonDict = dict[str, Any]


def check_value(secret: bytes) -> str:
    return b64(hmac.new(secret, b"Parley backup check v1", "sha256").digest())


class KeyBackup:
    def __init__(self, engine: ClientEngine) -> None:
        self.engine = engine

    @property
    def _store(self) -> Any:
        return self.engine.store

    def secret(self) -> tuple[bytes, str | None] | None:
        record = self._store.get("secrets", "backup")
        if record is None:
            return None
        return unb64(record["secret"]), record.get("version")

    def set_secret(self, secret: bytes, version: str | None) -> None:
        self._store.put("secrets", "backup", {"secret": b64(secret), "version": version})

    @property
    def enabled(self) -> bool:
        return self.secret() is not None

    async def enable(self) -> str:
        """Opt in: a new backup version under a fresh secret; returns the recovery key.

        The user must write the recovery key down: it is the only way back to the
        backup without another device.  Keys learnt from now on are uploaded."""
        secret = P.random_bytes(32)
        await self._new_version(secret)
        return encode_recovery_key(secret)

    async def rotate(self) -> str | None:
        """New secret and version (a device was removed); None when the backup is off."""
        if not self.enabled:
            return None
        return await self.enable()

    async def disable(self) -> None:
        """Opt out: forget the secret and the queue, delete every backup version on the server."""
        async with self.engine.lock:
            self._store.delete("secrets", "backup")
            for name in self._store.items("backup_queue"):
                self._store.delete("backup_queue", name)
            await self._store.commit()
        for _ in range(1000):  # older versions (from rotations) become current in turn
            try:
                body = await self.engine.http.get(CLIENT_V3 + "/room_keys/version")
                await self.engine.http.request("DELETE", f"{CLIENT_V3}/room_keys/version/{body['version']}")
            except MatrixError as exc:
                if exc.status == 404:
                    return
                raise

    async def restore_with_recovery_key(self, recovery_key: str) -> int:
        """Use a written-down recovery key on this device: turn the backup on with it, restore."""
        try:
            secret = decode_recovery_key(recovery_key)
        except CryptoError as exc:
            raise MatrixError(400, "M_INVALID_PARAM", str(exc)) from exc
        async with self.engine.lock:
            self.set_secret(secret, None)
            await self._store.commit()
        return await self.restore()

    async def _new_version(self, secret: bytes) -> str:
        body = await self.engine.http.post(CLIENT_V3 + "/room_keys/version", {
            "algorithm": ALGORITHM, "auth_data": {"check": check_value(secret)}})
        version = str(body["version"])
        async with self.engine.lock:
            self.set_secret(secret, version)
            await self._store.commit()
        return version

    async def _current_version(self, secret: bytes) -> str | None:
        try:
            body = await self.engine.http.get(CLIENT_V3 + "/room_keys/version")
        except Exception as exc:  # no backup yet (404) or unreachable
            if isinstance(exc, TransportFailure):
                raise
            return None
        auth = body.get("auth_data")
        if body.get("algorithm") != ALGORITHM or not isinstance(auth, dict) or \
                not hmac.compare_digest(str(auth.get("check")), check_value(secret)):
            return None
        return str(body["version"])

    def queue(self, room_id: str, event_id: str, key: bytes) -> None:
        if not self.enabled:
            return  # backup off: the key is not kept anywhere
        self._store.put("backup_queue", f"{room_id}|{event_id}",
                        {"room_id": room_id, "event_id": event_id, "key": b64(key)})

    def key_for(self, room_id: str, event_id: str) -> bytes | None:
        record = self._store.get("backup_keys", f"{room_id}|{event_id}")
        return None if record is None else unb64(record["key"])

    async def flush(self) -> int:
        """Upload queued keys; returns how many went up."""
        found = self.secret()
        queued = self._store.items("backup_queue")
        if found is None or not queued:
            return 0
        secret, version = found
        if version is None:
            return 0
        rooms: dict[str, JsonDict] = {}
        for record in queued.values():
            context = f"{record['room_id']}|{record['event_id']}".encode()
            blob = encrypt_local(secret, unb64(record["key"]), context=context)
            sessions = rooms.setdefault(record["room_id"], {"sessions": {}})["sessions"]
            sessions[record["event_id"]] = {
                "first_message_index": 0, "forwarded_count": 0, "is_verified": True,
                "session_data": {"ciphertext": b64(blob)}}
        await self.engine.http.put(CLIENT_V3 + "/room_keys/keys", {"rooms": rooms},
                                   params={"version": version})
        async with self.engine.lock:
            for name in queued:
                self._store.delete("backup_queue", name)
            await self._store.commit()
        return len(queued)

    async def restore(self) -> int:
        """Download every backed-up key (a new device); returns how many."""
        found = self.secret()
        if found is None:
            return 0
        secret, version = found
        current = await self._current_version(secret)
        if current is None:
            return 0
        body = await self.engine.http.get(CLIENT_V3 + "/room_keys/keys", params={"version": current})
        count = 0
        async with self.engine.lock:
            rooms = body.get("rooms") if isinstance(body.get("rooms"), dict) else {}
            assert isinstance(rooms, dict)
            for room_id, data in rooms.items():
                sessions = data.get("sessions") if isinstance(data, dict) else None
                if not isinstance(sessions, dict):
                    continue
                for event_id, entry in sessions.items():
                    try:
                        blob = unb64(entry["session_data"]["ciphertext"])
                        key = decrypt_local(secret, blob, context=f"{room_id}|{event_id}".encode())
                    except (CryptoError, KeyError, TypeError, ValueError):
                        continue
                    self._store.put("backup_keys", f"{room_id}|{event_id}",
                                    {"key": b64(key)})
                    count += 1
            if version != current:
                self.set_secret(secret, current)
            await self._store.commit()
        return count

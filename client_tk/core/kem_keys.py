"""This device's ML-KEM-1024 pre-keys for PQXDH (sans-I/O; :mod:`common.crypto.pqxdh`).

* A pool of signed **one-time** KEM pre-keys (``one_time_keys`` of
  ``/keys/upload``), topped up to :data:`KEM_TARGET` whenever ``/sync`` counts
  fewer than :data:`KEM_MIN`; each is deleted here once a session used it.
* One signed **last-resort** KEM pre-key (``fallback_keys``), replaced as soon
  as ``/sync`` no longer lists it as unused (the server handed it out); the
  replaced ones are kept (:data:`KEEP_RETIRED`) so that sessions started
  against them still open.

The device keys advertise :data:`~common.crypto.pqxdh.PQXDH_ALGORITHM`, so a
peer never talks X3DH to this device (``choose_handshake``), and this device
accepts PQXDH initial messages only (``require_pq``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from client_tk.core.store import LocalStore
from common.crypto import IdentityKeyPair
from common.crypto.kem_prekeys import KemPreKey, kem_upload_entries

JsonDict = dict[str, Any]
KEM_MIN = 10
KEM_TARGET = 20
KEEP_RETIRED = 2
NS = "keys:kem"
RECORD = "kem_last_resort"


@dataclass
class KemKeys:
    one_time: dict[int, KemPreKey] = field(default_factory=dict)
    last_resort: KemPreKey | None = None
    retired: list[KemPreKey] = field(default_factory=list)  # newest first
    next_id: int = 1

    @classmethod
    def load(cls, store: LocalStore) -> KemKeys:
        kk = cls()
        record = store.get("keys", RECORD)
        if record is not None:
            kk.last_resort = KemPreKey.from_dict(record["current"])
            kk.retired = [KemPreKey.from_dict(d) for d in record["retired"]]
            kk.next_id = int(record["next_id"])
        for key, value in store.items(NS).items():
            kk.one_time[int(key)] = KemPreKey.from_dict(value)
        return kk

    def _save(self, store: LocalStore) -> None:
        assert self.last_resort is not None
        store.put("keys", RECORD, {"current": self.last_resort.to_dict(),
                                   "retired": [k.to_dict() for k in self.retired],
                                   "next_id": self.next_id})

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    def upload(self, store: LocalStore, identity: IdentityKeyPair, user_id: str, device_id: str,
               count: int | None, fallback_unused: bool | None, now_ms: int) -> tuple[JsonDict, JsonDict]:
        """Stage new keys as needed; returns ``(one_time_keys, fallback_keys)`` entries to upload."""
        fallback: JsonDict = {}
        if self.last_resort is None or fallback_unused is False:
            if self.last_resort is not None:
                self.retired = [self.last_resort, *self.retired][:KEEP_RETIRED]
            self.last_resort = KemPreKey.generate(self._new_id(), last_resort=True, created_ms=now_ms)
            fallback = kem_upload_entries([self.last_resort], identity, user_id, device_id)
        missing = 0
        if count is not None and count < KEM_MIN:
            missing = KEM_TARGET - count
        elif count is None and not self.one_time:
            missing = KEM_TARGET  # first upload of this device
        new = [KemPreKey.generate(self._new_id(), created_ms=now_ms) for _ in range(missing)]
        for key in new:
            self.one_time[key.key_id] = key
            store.put(NS, str(key.key_id), key.to_dict())
        if fallback or new:
            self._save(store)
        return kem_upload_entries(new, identity, user_id, device_id), fallback

    def lookup(self, key_id: int, last_resort: bool) -> KemPreKey | None:
        if not last_resort:
            return self.one_time.get(key_id)
        for key in ([self.last_resort] if self.last_resort else []) + self.retired:
            if key.key_id == key_id:
                return key
        return None

    def consume(self, store: LocalStore, key_id: int, last_resort: bool) -> None:
        """A one-time KEM key opened a session: delete it (the last-resort key stays)."""
        if not last_resort and self.one_time.pop(key_id, None) is not None:
            store.delete(NS, str(key_id))

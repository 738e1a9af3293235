"""This device's keys: the identity key, signed pre-keys, one-time pre-keys.

Pure state + request bodies; the client does the uploading.

* Two identity keys: the **account key** (Ed25519, what contacts pin and
  safety numbers are made of; inside the password envelope of the account keys,
  :mod:`client_tk.core.account_keyring`) and this **device's own identity key**
  (sessions, signatures on pre-keys; random per device, never sent anywhere).
  The account key certifies the device key by signing the device keys object
  (``signatures[user]["ed25519:<account key>"]``, the account key named in
  :data:`ACCOUNT_KEY_FIELD`), as Matrix's cross-signing does.  A device made
  before per-device keys uses the account key as its device key (no
  certificate needed).
* Signed pre-keys rotate every :data:`SPK_ROTATE_MS` (7 days); a replaced key
  is kept :data:`SPK_GRACE_MS` so that a session started against it still
  opens.
* One-time pre-keys are topped up to :data:`OTK_TARGET` whenever the server
  counts fewer than :data:`OTK_MIN` (20).

Wire shapes are the homeserver's (``homeserver/services/keys.py``): device
keys carry the signed pre-key under ``im.parley.signed_pre_key``; one-time
keys are ``{"im.parley.signed_x25519:<id>": <signed object>}``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from client_tk.core.kem_keys import KemKeys
from client_tk.core.store import LocalStore
from common.canonical_json import unpadded_b64encode
from common.crypto import (
    IdentityKeyPair,
    IdentityPublicKey,
    OneTimePreKey,
    SignedPreKey,
)
from common.crypto.pqxdh import PQXDH_ALGORITHM

JsonDict = dict[str, Any]
DEVICE_ALGORITHMS = ["im.parley.olm.v1", "im.parley.sender_key.v1", "im.parley.x3dh.v1", PQXDH_ALGORITHM]
OTK_ALGORITHM = "im.parley.signed_x25519"
ACCOUNT_KEY_FIELD = "im.parley.account_key"
DEVICE_IDENTITY = "device_identity"  # record in NS: this device's own identity seed
SPK_FIELD = "im.parley.signed_pre_key"
SPK_AGE_FIELD = "im.parley.signed_pre_key_age_ms"
SPK_ROTATE_MS = 7 * 24 * 3600 * 1000
SPK_GRACE_MS = 14 * 24 * 3600 * 1000
OTK_MIN = 20
OTK_TARGET = 50
NS = "keys"


@dataclass
class KeyManager:
    identity: IdentityKeyPair
    user_id: str
    device_id: str
    spks: list[SignedPreKey] = field(default_factory=list)  # oldest first; last = current
    retired_ms: dict[int, int] = field(default_factory=dict)  # spk id -> when replaced
    otks: dict[int, OneTimePreKey] = field(default_factory=dict)
    next_id: int = 1
    device_keys_uploaded: bool = False
    kem: KemKeys = field(default_factory=KemKeys)
    account: IdentityKeyPair | None = None  # the account key, when it is not the device key

    @property
    def account_public(self) -> IdentityPublicKey:
        """The key contacts pin for this account (safety numbers)."""
        return (self.account or self.identity).public

    # --------------------------------------------------------- persistence
    @classmethod
    def load(cls, store: LocalStore, identity: IdentityKeyPair, user_id: str, device_id: str,
             account: IdentityKeyPair | None = None) -> KeyManager:
        km = cls(identity, user_id, device_id, account=account)
        d = store.get(NS, "prekeys")
        if d is not None:
            km.spks = [SignedPreKey.from_dict(x) for x in d["spks"]]
            km.retired_ms = {int(k): int(v) for k, v in d.get("retired", {}).items()}
            km.next_id = int(d["next_id"])
            # Device keys uploaded before PQXDH lack its algorithm: upload them again.
            km.device_keys_uploaded = bool(d.get("uploaded", False)) and bool(d.get("pqxdh", False))
        for key, value in store.items(NS + ":otk").items():
            km.otks[int(key)] = OneTimePreKey.from_dict(value)
        km.kem = KemKeys.load(store)
        return km

    def reload(self, store: LocalStore) -> None:
        """Forget uncommitted changes: read the committed keys back (after a rolled-back batch)."""
        fresh = KeyManager.load(store, self.identity, self.user_id, self.device_id, self.account)
        self.spks, self.retired_ms, self.otks = fresh.spks, fresh.retired_ms, fresh.otks
        self.next_id, self.device_keys_uploaded = fresh.next_id, fresh.device_keys_uploaded
        self.kem = fresh.kem

    def save(self, store: LocalStore) -> None:
        store.put(NS, "prekeys", {
            "spks": [k.to_dict() for k in self.spks],
            "retired": {str(k): v for k, v in self.retired_ms.items()},
            "next_id": self.next_id,
            "uploaded": self.device_keys_uploaded,
            "pqxdh": True,
        })

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id - 1

    # ------------------------------------------------------- signed pre-key
    @property
    def current_spk(self) -> SignedPreKey | None:
        return self.spks[-1] if self.spks else None

    def rotate_spk(self, store: LocalStore, now_ms: int) -> SignedPreKey:
        """Make a new signed pre-key current; keep the old ones for the grace period."""
        if self.spks:
            self.retired_ms[self.spks[-1].key_id] = now_ms
        spk = SignedPreKey.generate(self._new_id(), now_ms)
        self.spks.append(spk)
        self.spks = [k for k in self.spks
                     if k is spk or now_ms - self.retired_ms.get(k.key_id, now_ms) < SPK_GRACE_MS]
        self.retired_ms = {k: v for k, v in self.retired_ms.items() if any(s.key_id == k for s in self.spks)}
        self.device_keys_uploaded = False
        self.save(store)
        return spk

    def spk_needs_rotation(self, now_ms: int, server_age_ms: int | None = None) -> bool:
        spk = self.current_spk
        if spk is None:
            return True
        age = now_ms - spk.created_ms
        if server_age_ms is not None:
            age = max(age, server_age_ms)
        return age >= SPK_ROTATE_MS

    def signed_spk_object(self, spk: SignedPreKey) -> JsonDict:
        obj: JsonDict = {"usage": "signed_prekey", "key_id": spk.key_id,
                         "key": unpadded_b64encode(spk.public_bytes), "created_ts": spk.created_ms}
        return self.identity.sign_json(obj, self.user_id, self.device_id)

    def device_keys(self) -> JsonDict:
        spk = self.current_spk
        assert spk is not None
        obj: JsonDict = {
            "user_id": self.user_id,
            "device_id": self.device_id,
            "algorithms": list(DEVICE_ALGORITHMS),
            "keys": {
                f"ed25519:{self.device_id}": self.identity.public.to_b64(),
                f"curve25519:{self.device_id}": unpadded_b64encode(self.identity.public.x25519),
            },
            SPK_FIELD: self.signed_spk_object(spk),
        }
        if self.account is not None and self.account.public != self.identity.public:
            obj[ACCOUNT_KEY_FIELD] = self.account.public.to_b64()
            signed = self.identity.sign_json(obj, self.user_id, self.device_id)
            return self.account.sign_json(signed, self.user_id, self.account.public.to_b64())
        return self.identity.sign_json(obj, self.user_id, self.device_id)

    # ---------------------------------------------------- one-time pre-keys
    def generate_otks(self, store: LocalStore, count: int) -> JsonDict:
        """New one-time keys, staged in ``store``; returns the upload map."""
        out: JsonDict = {}
        for _ in range(count):
            key = OneTimePreKey.generate(self._new_id())
            self.otks[key.key_id] = key
            store.put(NS + ":otk", str(key.key_id), key.to_dict())
            out[f"{OTK_ALGORITHM}:{key.key_id}"] = key.signed_public(self.identity, self.user_id, self.device_id)
        self.save(store)
        return out

    def take_otk(self, store: LocalStore, key_id: int) -> OneTimePreKey | None:
        return self.otks.get(key_id)

    def consume_otk(self, store: LocalStore, key_id: int) -> None:
        if self.otks.pop(key_id, None) is not None:
            store.delete(NS + ":otk", str(key_id))

    def upload_body(self, store: LocalStore, now_ms: int, otk_count: int | None,
                    spk_age_ms: int | None = None, kem_count: int | None = None,
                    kem_fallback_unused: bool | None = None) -> JsonDict | None:
        """What ``/keys/upload`` needs now (rotation, top-ups, a new last-resort KEM key), or None."""
        body: JsonDict = {}
        if self.spk_needs_rotation(now_ms, spk_age_ms):
            self.rotate_spk(store, now_ms)
        if not self.device_keys_uploaded:
            body["device_keys"] = self.device_keys()
        one_time: JsonDict = {}
        if otk_count is not None and otk_count < OTK_MIN:
            one_time = self.generate_otks(store, OTK_TARGET - otk_count)
        kem_one_time, kem_fallback = self.kem.upload(store, self.identity, self.user_id, self.device_id,
                                                     kem_count, kem_fallback_unused, now_ms)
        if one_time or kem_one_time:
            body["one_time_keys"] = {**one_time, **kem_one_time}
        if kem_fallback:
            body["fallback_keys"] = kem_fallback
        return body or None

"""Who has which devices, and whose identity key we trust (sans-I/O).

The directory keeps, in the store, the last ``/keys/query`` answer per user,
the users whose device list the server reported as changed (``outdated``),
and the pinned identity key per user (trust on first use).  It never does a
request: :meth:`DeviceDirectory.to_query` says which users need a
``/keys/query``; the driver performs it and hands the answer to
:meth:`DeviceDirectory.apply_query`.

A pinned identity key never changes silently: a device under another identity
key makes the contact *changed* (the new key waits in the pin as ``pending``;
:meth:`apply_query` returns who changed, the engine emits
:class:`IdentityChanged` with the "safety number changed" notice).  Until the
user accepts exactly that key (:meth:`accept`), sending to the contact raises
:class:`SafetyNumberChangedError` and no device under the new key is used;
:meth:`reject` keeps the old key (the new devices stay unused).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from client_tk.core.crypto import DeviceInfo, parse_device_keys
from client_tk.core.keys import ACCOUNT_KEY_FIELD, KeyManager
from client_tk.core.store import LocalStore
from common.crypto import CryptoError, IdentityPublicKey
from common.crypto.trust import ContactTrust, Pin, safety_number_notice
from common.errors import MatrixError

SAFETY_NUMBER_CHANGED = "IM_PARLEY_SAFETY_NUMBER_CHANGED"


class SafetyNumberChangedError(MatrixError):
    """Sending refused (nothing was encrypted or queued): a recipient's identity key changed."""

    def __init__(self, user_ids: Iterable[str], notices: list[str]) -> None:
        self.user_ids = sorted(user_ids)
        super().__init__(403, SAFETY_NUMBER_CHANGED, " ".join(notices))

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]


def account_key_of(info: DeviceInfo) -> str | None:
    """The account key a verified device belongs to: the one named in its keys and signing
    them (a certified per-device key), else its own key (a device from before per-device
    keys); None when the named account key did not sign."""
    named = info.keys.get(ACCOUNT_KEY_FIELD)
    if named is None:
        return info.identity.to_b64()
    try:
        IdentityPublicKey.from_b64(named).verify_json(info.keys, info.user_id, str(named))
    except (CryptoError, ValueError):
        return None
    return str(named)


class DeviceDirectory:
    def __init__(self, store: LocalStore, keys: KeyManager) -> None:
        self.store = store
        self.keys = keys
        self.user_id = keys.user_id
        self.device_id = keys.device_id

    def outdated(self) -> set[str]:
        record = self.store.get("state", "outdated")
        return set(record["users"]) if record else set()

    def mark_outdated(self, users: Iterable[str]) -> None:
        self.store.put("state", "outdated", {"users": sorted(self.outdated() | set(users))})

    def to_query(self, users: Iterable[str], refresh: bool = False) -> list[str]:
        """Users whose devices must be fetched before :meth:`verified` is complete."""
        outdated = self.outdated()
        return sorted({u for u in users
                       if refresh or u in outdated or self.store.get("devices", u) is None})

    def unknown_identities(self, users: Iterable[str]) -> list[str]:
        return sorted({u for u in users if self.store.get("identities", u) is None})

    def unknown_devices(self, senders: Iterable[tuple[str, str]]) -> list[str]:
        """Users to query before decrypting: not pinned yet, or writing from a device we do
        not know (its own identity key, certified by the account key, is in its keys)."""
        out = set()
        for user, device in senders:
            stored = self.store.get("devices", user)
            if self.store.get("identities", user) is None or stored is None or device not in stored["devices"]:
                out.add(user)
        return sorted(out)

    @staticmethod
    def query_body(users: list[str]) -> JsonDict:
        return {"device_keys": {u: [] for u in users}}

    def apply_query(self, users: list[str], body: JsonDict) -> list[str]:
        """Stage the answer of ``POST /keys/query`` for ``users``; returns whose key just changed."""
        changed: list[str] = []
        found = body.get("device_keys") if isinstance(body.get("device_keys"), dict) else {}
        assert isinstance(found, dict)
        for user in users:
            per = found.get(user) if isinstance(found.get(user), dict) else {}
            assert isinstance(per, dict)
            self.store.put("devices", user, {"devices": per})
            if self._pin_identity(user, per):
                changed.append(user)
        self.store.put("state", "outdated", {"users": sorted(self.outdated() - set(users))})
        return changed

    def identity(self, user_id: str) -> IdentityPublicKey | None:
        pinned = self.store.get("identities", user_id)
        return None if pinned is None else IdentityPublicKey.from_b64(pinned["key"])

    def verified(self, users: Iterable[str]) -> list[DeviceInfo]:
        """Devices of ``users`` (not this one) whose keys carry the user's pinned identity."""
        out: list[DeviceInfo] = []
        for user in users:
            pinned = self.store.get("identities", user)
            stored = self.store.get("devices", user) or {"devices": {}}
            for device_id, obj in sorted(stored["devices"].items()):
                if (user, device_id) == (self.user_id, self.device_id):
                    continue
                info = parse_device_keys(obj, user, device_id)
                if info is None or pinned is None or account_key_of(info) != pinned["key"]:
                    continue
                out.append(info)
        return out

    def device_identity(self, user: str, device_id: str) -> IdentityPublicKey | None:
        """The identity key a session with ``user``'s device must use: its own key if it is
        verified (certified by the pinned account key), else the pinned account key itself
        (what a device from before per-device keys uses); None for a user not pinned yet."""
        found = next((d for d in self.verified([user]) if d.device_id == device_id), None)
        return found.identity if found is not None else self.identity(user)

    def _pin_identity(self, user: str, devices: JsonDict) -> bool:
        """Trust on first use; True when a device under another key makes the contact changed."""
        keys = {key for d, obj in devices.items()
                if (info := parse_device_keys(obj, user, d)) is not None
                and (key := account_key_of(info)) is not None}
        if user == self.user_id:
            keys = {self.keys.account_public.to_b64()}
        pinned = self.store.get("identities", user)
        if pinned is None:
            if len(keys) == 1:
                self.store.put("identities", user, {"key": keys.pop(), "pending": None})
            return False
        others = sorted(keys - {pinned["key"]})
        if not others or pinned.get("pending") in others:
            return False
        logger.warning("identity key of %s changed: sending to them is held until accepted", user)
        self.store.put("identities", user, {"key": pinned["key"], "pending": others[0]})
        return True

    # ------------------------------------------------------------ safety numbers
    def _trust(self) -> ContactTrust:
        pins = {}
        for user, record in self.store.items("identities").items():
            pending = record.get("pending")
            pins[user] = Pin(IdentityPublicKey.from_b64(record["key"]),
                             None if pending is None else IdentityPublicKey.from_b64(pending))
        return ContactTrust(pins)

    def changed(self, users: Iterable[str] | None = None) -> list[str]:
        """Contacts whose new identity key waits for the user's decision."""
        records = self.store.items("identities")
        return sorted(u for u, r in records.items()
                      if r.get("pending") and (users is None or u in set(users)))

    def notice(self, user_id: str) -> str:
        return safety_number_notice(self.user_id, self.keys.account_public, self._trust(), user_id)

    def check_send(self, users: Iterable[str]) -> None:
        blocked = self.changed(users)
        if blocked:
            raise SafetyNumberChangedError(blocked, [self.notice(u) for u in blocked])

    def accept(self, user_id: str, shown_key: str) -> None:
        """The user accepted the new safety number that was shown for ``shown_key``."""
        pin = self._trust().accept(user_id, IdentityPublicKey.from_b64(shown_key)).pins[user_id]
        self.store.put("identities", user_id, {"key": pin.key.to_b64(), "pending": None})
        self.mark_outdated([user_id])

    def reject(self, user_id: str) -> None:
        pin = self._trust().reject(user_id).pins[user_id]
        self.store.put("identities", user_id, {"key": pin.key.to_b64(), "pending": None})

    def pending_key(self, user_id: str) -> str | None:
        record = self.store.get("identities", user_id)
        return None if record is None else record.get("pending")

    def device_ids(self, user_id: str) -> list[str]:
        stored = self.store.get("devices", user_id) or {"devices": {}}
        return sorted(stored["devices"])

"""Who has which devices, and whose identity key we trust (sans-I/O).

The directory keeps, in the store, the last ``/keys/query`` answer per user,
the users whose device list the server reported as changed (``outdated``),
and the pinned identity key per user (trust on first use).  It never does a
request: :meth:`DeviceDirectory.to_query` says which users need a
``/keys/query``; the driver performs it and hands the answer to
:meth:`DeviceDirectory.apply_query`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from client_tk.core.crypto import DeviceInfo, parse_device_keys
from client_tk.core.keys import KeyManager
from client_tk.core.store import LocalStore
from common.crypto import IdentityPublicKey

logger = logging.getLogger(__name__)
JsonDict = dict[str, Any]


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

    @staticmethod
    def query_body(users: list[str]) -> JsonDict:
        return {"device_keys": {u: [] for u in users}}

    def apply_query(self, users: list[str], body: JsonDict) -> None:
        """Stage the answer of ``POST /keys/query`` for ``users``."""
        found = body.get("device_keys") if isinstance(body.get("device_keys"), dict) else {}
        assert isinstance(found, dict)
        for user in users:
            per = found.get(user) if isinstance(found.get(user), dict) else {}
            assert isinstance(per, dict)
            self.store.put("devices", user, {"devices": per})
            self._pin_identity(user, per)
        self.store.put("state", "outdated", {"users": sorted(self.outdated() - set(users))})

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
                if info is None or pinned is None or info.identity.to_b64() != pinned["key"]:
                    continue
                out.append(info)
        return out

    def _pin_identity(self, user: str, devices: JsonDict) -> None:
        """Trust on first use: a user's devices share one identity key; pin it."""
        keys = {info.identity.to_b64() for d, obj in devices.items()
                if (info := parse_device_keys(obj, user, d)) is not None}
        if user == self.user_id:
            keys = {self.keys.identity.public.to_b64()}
        pinned = self.store.get("identities", user)
        if pinned is None and len(keys) == 1:
            self.store.put("identities", user, {"key": keys.pop()})
        elif pinned is not None and keys and pinned["key"] not in keys:
            logger.warning("identity key of %s changed: ignoring its new devices", user)

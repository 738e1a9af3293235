"""Which of a server's keys may verify an event's signature (spec: "Validating hashes and signatures").

From room version 5 a key counts only if its ``valid_until_ts`` is at least
the event's ``origin_server_ts``; a fetched key is valid at most 7 days
after the fetch.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from homeserver.services.events import verify_event_signature
from homeserver.services.room_versions import RoomVersion

JsonDict = dict[str, Any]
# The spec caps a fetched key's validity at 7 days after the fetch.
MAX_KEY_VALIDITY_MS = 7 * 24 * 3600 * 1000


@dataclass(frozen=True)
class VerifyKey:
    """A server's signing key as its fetcher knows it."""

    public: Ed25519PublicKey
    # Effective validity in ms (see :func:`effective_valid_until`); None: no expiry (e.g. our own key).
    valid_until_ts: int | None = None


def effective_valid_until(valid_until_ts: int, fetched_at_ms: int) -> int:
    """The lesser of a key response's ``valid_until_ts`` and 7 days after it was fetched (spec)."""
    return min(valid_until_ts, fetched_at_ms + MAX_KEY_VALIDITY_MS)


# (server, key id) -> the key; a bare public key has no known expiry.
KeyLookup = Callable[[str, str], Awaitable[Ed25519PublicKey | VerifyKey | None]]


async def any_valid_signature(key_lookup: KeyLookup, pdu: JsonDict, server: str, keys: JsonDict,
                              version: RoomVersion) -> bool:
    """Whether one of ``server``'s signatures on ``pdu`` verifies with a key valid at the event (v5+)."""
    for key_id in keys:
        algorithm, _, key_version = str(key_id).partition(":")
        if algorithm != "ed25519":
            continue
        found = await key_lookup(server, str(key_id))
        if found is None:
            continue
        key = found if isinstance(found, VerifyKey) else VerifyKey(found)
        if (version.key_validity and key.valid_until_ts is not None
                and key.valid_until_ts < int(pdu["origin_server_ts"])):
            continue  # v5+: the key must be valid at the event's origin_server_ts
        if verify_event_signature(pdu, server, key_version, key.public, version):
            return True
    return False

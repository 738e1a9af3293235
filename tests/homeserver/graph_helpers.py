"""Build signed event graphs of a room on a fake remote server (for the incoming-event path)."""

from __future__ import annotations

import itertools
import secrets
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from homeserver.services.event_auth import CREATE, AuthError, auth_types_for_event, check_event_allowed
from homeserver.services.events import EventSpec, build_pdu, room_id_for_create
from homeserver.services.room_versions import ROOM_VERSIONS
from homeserver.services.state_res import resolve

REMOTE = "remote.test"
KEY_ID = "ed25519:k1"


@dataclass
class RemoteRoom:
    """A room built on ``remote.test``: every event signed with one test key."""

    version: str
    key: Ed25519PrivateKey = field(default_factory=Ed25519PrivateKey.generate)
    room_id: str = ""
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    state_after: dict[str, dict[tuple[str, str], str]] = field(default_factory=dict)
    prevs: dict[str, list[str]] = field(default_factory=dict)
    names: dict[str, str] = field(default_factory=dict)
    ts: Any = field(default_factory=lambda: itertools.count(1_000_000 + secrets.randbelow(10**9)))

    def __post_init__(self) -> None:
        if not self.room_id:
            self.room_id = f"!{secrets.token_hex(8)}:{REMOTE}"

    async def key_lookup(self, server: str, key_id: str) -> Ed25519PublicKey | None:
        return self.key.public_key() if (server, key_id) == (REMOTE, KEY_ID) else None

    def add(self, name: str, sender: str, event_type: str, content: dict[str, Any], state_key: str | None = None,
            prev: list[str] | None = None) -> str:
        """Add an event after the named events (default: the last one added); return its id."""
        rules = ROOM_VERSIONS[self.version]
        prev_ids = [self.names[p] for p in prev] if prev is not None else (
            [list(self.names.values())[-1]] if self.names else [])
        before = resolve(rules, [self.state_after[p] for p in prev_ids], self.events) if prev_ids else {}
        keys = auth_types_for_event(event_type, sender, state_key, content, rules)
        depth = max((int(self.events[p]["depth"]) for p in prev_ids), default=0) + 1
        hashes = {e: self.events[e].get("hashes", {}) for e in self.events}
        event_id, pdu = build_pdu(
            EventSpec(event_type, sender, content, state_key), self.room_id, prev_ids,
            [before[k] for k in keys if k in before], depth, next(self.ts), REMOTE, KEY_ID.split(":")[1], self.key,
            rules, hashes,
        )
        if event_type == "m.room.create" and rules.room_id_from_create:
            self.room_id = room_id_for_create(event_id)
        self.events[event_id] = pdu
        after = dict(before)
        try:
            check_event_allowed(pdu, {k: self.events[before[k]] for k in [CREATE, *keys] if k in before})
            accepted = True
        except AuthError:
            accepted = False  # a rejected event changes no state
        if state_key is not None and accepted:
            after[(event_type, state_key)] = event_id
        self.state_after[event_id] = after
        self.prevs[event_id] = prev_ids
        self.names[name] = event_id
        return event_id

    def user(self, local: str) -> str:
        return f"@{local}:{REMOTE}"

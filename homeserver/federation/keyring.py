"""Server signing keys: our own key document, and other servers' keys fetched and cached.

Spec, "Retrieving server keys": a server publishes its keys at
``GET /_matrix/key/v2/server``, signed by itself, with ``valid_until_ts``;
a notary re-serves them (``/_matrix/key/v2/query``) co-signed.  A fetched key
is trusted until the lesser of its ``valid_until_ts`` and 7 days after the
fetch; an old key until its ``expired_ts``.  Keys are cached in the
database (shared by the instances), so a restart does not refetch them.

``KeyRing.lookup`` has the :data:`homeserver.services.incoming.KeyLookup`
shape, so the room graph's incoming-event checks can use it directly.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.canonical_json import encode_canonical_json, sign_json, unpadded_b64decode, verify_signed_json
from common.errors import Codes, MatrixError
from common.strict_json import loads_strict
from homeserver.services.clock import Clock
from homeserver.services.events import verify_event_signature
from homeserver.services.incoming import VerifyKey, effective_valid_until
from homeserver.services.room_versions import ROOM_VERSIONS, RoomVersion
from homeserver.signing_key import SigningKey
from homeserver.storage.federation_keys import ServerKeyCache, StoredServerKey

logger = logging.getLogger(__name__)

JsonDict = dict[str, Any]
# (destination, path, json body or None) -> the answer; unauthenticated requests.
KeyFetch = Callable[[str, str, JsonDict | None], Awaitable[JsonDict]]
# Unknown key ids of one server are fetched again at most this often (a forged key id
# in every request must not make us fetch every time).
REFETCH_COOLDOWN_MS = 30_000


def _public_key(b64: Any) -> Ed25519PublicKey | None:
    try:
        raw = unpadded_b64decode(b64)
        return Ed25519PublicKey.from_public_bytes(raw) if len(raw) == 32 else None
    except (ValueError, TypeError):
        return None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def parse_key_response(server_name: str, response: Any, fetched_ms: int) -> list[StoredServerKey]:
    """The keys of one server's key response, checked: its name, shape and self-signatures.

    Every current key must have signed the response (spec: "...signed by all
    of the keys in verify_keys").  Raises ``ValueError`` with the reason.
    """
    if not isinstance(response, dict) or response.get("server_name") != server_name:
        raise ValueError("the key response is not for this server")
    valid_until = _int(response.get("valid_until_ts"))
    verify_keys = response.get("verify_keys")
    old_keys = response.get("old_verify_keys", {})
    if valid_until is None or not isinstance(verify_keys, dict) or not isinstance(old_keys, dict):
        raise ValueError("the key response lacks valid_until_ts or verify_keys")
    canonical = encode_canonical_json(response).decode()
    found: list[StoredServerKey] = []
    for key_id, entry in verify_keys.items():
        if not key_id.startswith("ed25519:"):
            continue
        public = _public_key(entry.get("key") if isinstance(entry, dict) else None)
        if public is None:
            raise ValueError(f"key {key_id[:80]} is malformed")
        if not verify_signed_json(response, server_name, key_id.split(":", 1)[1], public):
            raise ValueError(f"the key response is not signed by its key {key_id[:80]}")
        found.append(StoredServerKey(server_name, key_id, entry["key"],
                                     effective_valid_until(valid_until, fetched_ms), None, fetched_ms, canonical))
    if not found:
        raise ValueError("the key response has no ed25519 key")
    for key_id, entry in old_keys.items():
        expired = _int(entry.get("expired_ts")) if isinstance(entry, dict) else None
        if not key_id.startswith("ed25519:") or expired is None or key_id in verify_keys:
            continue
        if _public_key(entry.get("key")) is None:
            continue
        found.append(StoredServerKey(server_name, key_id, entry["key"], expired, expired, fetched_ms, canonical))
    return found


class KeyRing:
    def __init__(self, server_name: str, signing_key: SigningKey, cache: ServerKeyCache, clock: Clock,
                 fetch: KeyFetch, key_validity_ms: int, notaries: list[str]) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.cache = cache
        self.clock = clock
        self.fetch = fetch
        self.key_validity_ms = key_validity_ms
        self.notaries = notaries
        self._last_fetch: dict[str, int] = {}
        # One fetch per server at a time: concurrent lookups wait for it instead of finding
        # the cooldown set by a fetch that has not answered yet.
        self._fetching: dict[str, asyncio.Future[None]] = {}

    # ------------------------------------------------------------- our own keys
    def own_key_response(self) -> JsonDict:
        """``GET /_matrix/key/v2/server``: our key, signed, valid for the configured time."""
        doc: JsonDict = {
            "server_name": self.server_name,
            "valid_until_ts": self.clock.now_ms() + self.key_validity_ms,
            "verify_keys": {self.signing_key.key_id: {"key": self.signing_key.public_key_b64}},
            "old_verify_keys": {},
        }
        return sign_json(doc, self.server_name, self.signing_key.version, self.signing_key.private_key)

    def cosign(self, response: JsonDict) -> JsonDict:
        """A notary's copy of another server's key response: the original plus our signature."""
        copy = dict(response)
        copy["signatures"] = {k: dict(v) for k, v in response.get("signatures", {}).items()}
        return sign_json(copy, self.server_name, self.signing_key.version, self.signing_key.private_key)

    # ------------------------------------------------------------ remote keys
    async def lookup(self, server_name: str, key_id: str, minimum_valid_until_ts: int = 0) -> VerifyKey | None:
        """The key, from the cache or fetched; None when the server does not have it (any more)."""
        if server_name == self.server_name:
            if key_id != self.signing_key.key_id:
                return None
            public = _public_key(self.signing_key.public_key_b64)
            return None if public is None else VerifyKey(public, None)
        cached = await self.cache.get(server_name, key_id)
        wanted = max(minimum_valid_until_ts, self.clock.now_ms()) if cached is None or cached.expired_ts is None \
            else minimum_valid_until_ts
        if cached is None or cached.valid_until_ts < wanted:
            await self._refresh(server_name, force=cached is not None)
            cached = await self.cache.get(server_name, key_id)
        if cached is None:
            return None
        public = _public_key(cached.public_key)
        return None if public is None else VerifyKey(public, cached.valid_until_ts)

    async def _refresh(self, server_name: str, force: bool) -> None:
        running = self._fetching.get(server_name)
        if running is not None:
            await asyncio.shield(running)
            return
        now = self.clock.now_ms()
        if not force and now - self._last_fetch.get(server_name, -REFETCH_COOLDOWN_MS) < REFETCH_COOLDOWN_MS:
            return
        self._last_fetch[server_name] = now
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._fetching[server_name] = done
        try:
            await self._fetch_from_anywhere(server_name)
        finally:
            del self._fetching[server_name]
            done.set_result(None)

    async def _fetch_from_anywhere(self, server_name: str) -> None:
        try:
            await self.fetch_direct(server_name)
            return
        except (MatrixError, ValueError) as exc:
            logger.info("keys of %s not fetched from it: %s", server_name[:255], exc)
        for notary in self.notaries:
            try:
                await self.fetch_via_notary(notary, server_name)
                return
            except (MatrixError, ValueError) as exc:
                logger.info("keys of %s not fetched from notary %s: %s", server_name[:255], notary, exc)

    async def fetch_direct(self, server_name: str) -> list[StoredServerKey]:
        response = await self.fetch(server_name, "/_matrix/key/v2/server", None)
        keys = parse_key_response(server_name, response, self.clock.now_ms())
        await self.cache.store(keys)
        return keys

    async def fetch_via_notary(self, notary: str, server_name: str) -> list[StoredServerKey]:
        body: JsonDict = {"server_keys": {server_name: {}}}
        answer = await self.fetch(notary, "/_matrix/key/v2/query", body)
        stored: list[StoredServerKey] = []
        for response in answer.get("server_keys", []) if isinstance(answer.get("server_keys"), list) else []:
            if not isinstance(response, dict) or response.get("server_name") != server_name:
                continue
            await self.verify_json(notary, response, at_ts=self.clock.now_ms())
            keys = parse_key_response(server_name, response, self.clock.now_ms())
            await self.cache.store(keys)
            stored.extend(keys)
        if not stored:
            raise ValueError("the notary returned no keys")
        return stored

    async def responses_for(self, server_name: str, minimum_valid_until_ts: int) -> list[JsonDict]:
        """Notary: ``server_name``'s key responses valid at least until the given time (fetched if needed)."""
        if server_name == self.server_name:
            return [self.own_key_response()]
        stored = await self.cache.for_server(server_name)
        current = [k for k in stored if k.expired_ts is None]
        if not current or max(k.valid_until_ts for k in current) < max(minimum_valid_until_ts, 1):
            try:
                await self.fetch_direct(server_name)
            except (MatrixError, ValueError) as exc:
                logger.info("notary: keys of %s not fetched: %s", server_name[:255], exc)
            stored = await self.cache.for_server(server_name)
        unique = {key.response for key in stored if key.valid_until_ts >= minimum_valid_until_ts
                  or key.expired_ts is not None}
        return [self.cosign(loads_strict(text)) for text in sorted(unique)]

    # ------------------------------------------------------------ verification
    async def verify_json(self, server_name: str, signed_obj: JsonDict, *, at_ts: int) -> None:
        """Raise 401 ``M_UNAUTHORIZED`` unless ``server_name`` signed ``signed_obj`` with a key valid at ``at_ts``."""
        signatures = signed_obj.get("signatures")
        by_server = signatures.get(server_name) if isinstance(signatures, dict) else None
        if not isinstance(by_server, dict) or not by_server:
            raise MatrixError(401, Codes.UNAUTHORIZED, f"Not signed by {server_name[:255]}")
        reasons = []
        for key_id in by_server:
            if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
                continue
            key = await self.lookup(server_name, key_id, at_ts)
            if key is None:
                reasons.append(f"key {key_id[:80]} of {server_name[:255]} is unknown")
            elif key.valid_until_ts is not None and key.valid_until_ts < at_ts:
                reasons.append(f"key {key_id[:80]} of {server_name[:255]} was not valid at {at_ts}")
            elif verify_signed_json(signed_obj, server_name, key_id.split(":", 1)[1], key.public):
                return
            else:
                reasons.append(f"the signature with key {key_id[:80]} of {server_name[:255]} is invalid")
        raise MatrixError(401, Codes.UNAUTHORIZED, "; ".join(reasons) or f"Not signed by {server_name[:255]}")

    async def verify_event_signatures(self, event: JsonDict, room_version: str) -> None:
        """Raise 403 ``M_FORBIDDEN`` unless every server that must sign the event did.

        Spec, "Validating hashes and signatures on received events": the
        sender's server; in room versions 1 and 2 the event id's server; for a
        restricted join (``join_authorised_via_users_server``) the authorising
        user's server.  From v5 on the key must be valid at ``origin_server_ts``.
        """
        version: RoomVersion | None = ROOM_VERSIONS.get(room_version)
        if version is None:
            raise MatrixError(400, Codes.UNSUPPORTED_ROOM_VERSION, f"Unknown room version {room_version[:20]!r}")
        for server in required_signers(event, version):
            signatures = event.get("signatures")
            keys = signatures.get(server) if isinstance(signatures, dict) else None
            ts = _int(event.get("origin_server_ts")) or 0
            ok = False
            for key_id in keys if isinstance(keys, dict) else {}:
                if not isinstance(key_id, str) or not key_id.startswith("ed25519:"):
                    continue
                key = await self.lookup(server, key_id, ts if version.key_validity else 0)
                if key is None or (version.key_validity and key.valid_until_ts is not None
                                   and key.valid_until_ts < ts):
                    continue
                if verify_event_signature(event, server, key_id.split(":", 1)[1], key.public, version):
                    ok = True
                    break
            if not ok:
                raise MatrixError(403, Codes.FORBIDDEN, f"The event is not validly signed by {server[:255]}")


def required_signers(event: JsonDict, version: RoomVersion) -> set[str]:
    def server_of(identifier: Any) -> str | None:
        return identifier.split(":", 1)[1] if isinstance(identifier, str) and ":" in identifier else None

    servers = {s for s in [server_of(event.get("sender"))] if s}
    if version.event_id_scheme == "server":
        servers |= {s for s in [server_of(event.get("event_id"))] if s}
    content = event.get("content")
    via = content.get("join_authorised_via_users_server") if isinstance(content, dict) else None
    if event.get("type") == "m.room.member" and version.restricted and isinstance(via, str):
        servers |= {s for s in [server_of(via)] if s}
    if not servers:
        raise MatrixError(400, Codes.BAD_JSON, "The event has no sender server")
    return servers

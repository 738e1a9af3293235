"""End-to-end keys: device keys, one-time and fallback keys, queries, device lists.

The server verifies what it can and stores everything else as opaque JSON.

**Device keys** (``POST /keys/upload`` ``device_keys``) are a Matrix
``DeviceKeys`` object, self-signed with the device's Ed25519 key::

    {"user_id": "@alice:hs", "device_id": "DEV",
     "algorithms": ["im.parley.x3dh.v1", ...],
     "keys": {"ed25519:DEV": <identity key, unpadded base64 of 32 bytes>,
              "curve25519:DEV": <X25519 key, 32 bytes>},
     "im.parley.signed_pre_key": {            # Parley only; optional
         "usage": "signed_prekey", "key_id": 7,
         "key": <X25519 signed pre-key, 32 bytes>,
         "created_ts": <ms, optional, inside the signed object>,
         "signatures": {"@alice:hs": {"ed25519:DEV": <sig over this object>}}},
     "signatures": {"@alice:hs": {"ed25519:DEV": <sig over the whole object>}}}

For Parley the ``ed25519`` key is the user's identity key (shared by paired
devices) and the signed pre-key object is what
:meth:`common.crypto.keys.SignedPreKey.signed_public` produces (plus an
optional ``created_ts``).  The server checks: ``user_id``/``device_id`` are
the uploader's, every key is well-formed, the object's own signature, and the
signed pre-key's signature.  The Ed25519 key of a device can never change;
any other change (a rotated signed pre-key, new algorithms) replaces the
stored object and is a device-list change.  Olm clients (matrix-nio) upload
the same shape without the Parley field.

**One-time keys** ``{"<algorithm>:<key_id>": key}``: ``signed_curve25519``
and every ``im.parley.*`` algorithm (Parley's one-time pre-keys use
``im.parley.signed_x25519``) must be objects ``{"key", "signatures", ...}``
signed by the device key; any object that carries the device's signature is
verified; plain ``curve25519`` (and other unknown) string keys are opaque.
``fallback_keys`` follow the same rules (one per algorithm, handed out when
no one-time key is left, until replaced).  PQXDH's signed ML-KEM pre-keys
(one-time and last-resort) use ``im.parley.signed_mlkem1024``: see
``kem_keys.py``.

Extra Parley response fields (upload and ``/sync``):
``im.parley.signed_pre_key_created_ts`` and ``im.parley.signed_pre_key_age_ms``
so clients rotate the signed pre-key every 7 days.

**Who may query/claim whose keys**: own devices always; users sharing a room
as joined, invited or knocking members on either side (Element encrypts its
first DM message while the other person is only invited); users the requester has looked
up (:meth:`KeyService.grant_lookup`).  Other users' results are silently
empty.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.canonical_json import CanonicalJsonError, encode_canonical_json, verify_signed_json
from common.crypto.keys import X3DH_ALGORITHM
from common.errors import Codes, MatrixError, bad_json, bad_param
from common.identifiers import is_valid_device_id, parse_user_id
from homeserver.notifier import Notifier
from homeserver.services.clock import Clock
from homeserver.services.kem_keys import KEM_ALGORITHM, check_kem_key
from homeserver.services.ratelimit import Limit, RateLimiter
from homeserver.services.sync_api import MembershipReader, SyncContext, SyncToken
from homeserver.storage.keys import DEVICE_LISTS_STREAM, KeyRepository, NewOneTimeKey, StoredDeviceKeys

logger = logging.getLogger(__name__)

PARLEY_DEVICE_ALGORITHM = X3DH_ALGORITHM
PARLEY_ONE_TIME_KEY_ALGORITHM = "im.parley.signed_x25519"
SIGNED_PRE_KEY_FIELD = "im.parley.signed_pre_key"
SPK_AGE_FIELD = "im.parley.signed_pre_key_age_ms"
SPK_CREATED_FIELD = "im.parley.signed_pre_key_created_ts"

_ALGORITHM = re.compile(r"^[A-Za-z0-9._\-]{1,64}\Z")
_KEY_ID = re.compile(r"^[A-Za-z0-9+/=._~\-]{1,128}\Z")
MAX_ONE_TIME_KEYS_PER_ALGORITHM = 500
MAX_KEY_OBJECT_BYTES = 16_384
MAX_QUERY_USERS = 1000
# device_lists in /sync changes with the device-list stream and with memberships (events).
DEVICE_LIST_INPUTS = frozenset({DEVICE_LISTS_STREAM, "events"})


class MemberEvent(Protocol):
    type: str
    state_key: str | None
    membership: str | None
    room_id: str


class MembershipHistory(Protocol):
    """Membership changes by events-stream position (the events repository)."""

    async def state_between(self, room_id: str, after: int, upto: int) -> list[Any]: ...

    async def user_membership_events(self, user_id: str, after: int, upto: int) -> list[Any]: ...

    async def member_changes(self, room_ids: list[str], after: int, upto: int) -> list[Any]:
        """Per (room, user) changed in (after, upto], the latest membership event."""
        ...


def _latest_members(room_events: dict[str, list[Any]], room_ids: list[str]) -> list[Any]:
    """:meth:`MembershipHistory.member_changes` of rooms whose events the caller holds
    (oldest first): per (room, user), the latest ``m.room.member`` event."""
    latest: dict[tuple[str, str], Any] = {}
    for room_id in room_ids:
        for event in room_events.get(room_id, ()):
            if event.type == "m.room.member" and event.state_key is not None:
                latest[(room_id, event.state_key)] = event
    return sorted(latest.values(), key=lambda e: e.stream_pos)


@dataclass
class DeviceListDelta:
    changed: set[str]
    left: set[str]


def _requires_signature(algorithm: str) -> bool:
    return algorithm == "signed_curve25519" or algorithm.startswith("im.parley.")


def _b64_32(value: Any, what: str) -> str:
    """Validate an unpadded base64 encoding of 32 bytes (a Curve25519/Ed25519 key)."""
    if not isinstance(value, str) or len(value) > 64:
        raise bad_param(f"{what} must be a base64 string")
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except ValueError:
        raise bad_param(f"{what} is not valid base64") from None
    if len(raw) != 32:
        raise bad_param(f"{what} must encode 32 bytes")
    return value


def _canonical(obj: Any, what: str) -> str:
    try:
        text = encode_canonical_json(obj).decode("utf-8")
    except CanonicalJsonError as exc:
        raise bad_json(f"{what}: {exc}") from None
    if len(text) > MAX_KEY_OBJECT_BYTES:
        raise MatrixError(400, Codes.TOO_LARGE, f"{what} is too large")
    return text


def _verify(obj: dict[str, Any], user_id: str, device_id: str, key: Ed25519PublicKey, what: str) -> None:
    if not verify_signed_json(obj, user_id, device_id, key):
        raise bad_param(f"{what}: missing or invalid signature by ed25519:{device_id}")


def _public_key(b64: str) -> Ed25519PublicKey:
    raw = base64.b64decode(b64 + "=" * (-len(b64) % 4))
    try:
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError:
        raise bad_param("Invalid Ed25519 key") from None


def _split_key_name(name: Any, what: str) -> tuple[str, str]:
    if not isinstance(name, str):
        raise bad_json(f"{what}: key names must be strings")
    algorithm, sep, key_id = name.partition(":")
    if not sep or not _ALGORITHM.match(algorithm) or not _KEY_ID.match(key_id):
        raise bad_param(f"{what}: invalid key name {name[:80]!r} (expected <algorithm>:<key_id>)")
    return algorithm, key_id


class KeyService:
    """Implements :class:`homeserver.services.sync_api.SyncContributor` too."""

    def __init__(
        self,
        repo: KeyRepository,
        notifier: Notifier,
        clock: Clock,
        server_name: str,
        limiter: RateLimiter,
        claims_per_hour: int,
        membership: MembershipReader | None = None,
    ) -> None:
        self.repo = repo
        # One claimer takes at most ``claims_per_hour`` one-time keys of each
        # device; past that it gets the fallback key, so a room-mate cannot
        # drain a user's one-time keys.
        self.limiter = limiter
        self.claim_limit = Limit("otk_claim", claims_per_hour, 3_600_000)
        self.notifier = notifier
        self.clock = clock
        self.server_name = server_name
        # Set by app.py once the rooms service exists; without it only own
        # keys and looked-up users are visible.
        self.membership = membership
        # Set by app.py: lets device_lists report users who start or stop
        # sharing a room (joins and leaves between two sync tokens).
        self.history: MembershipHistory | None = None
        # Called as (requester, visible users queried, response) to add more to
        # /keys/query answers (cross-signing keys and signatures).
        self.query_extensions: list[Callable[[str, list[str], dict[str, Any]], Awaitable[None]]] = []
        # Keys of other servers' users (homeserver/federation/remote_keys.py); None: reported as failures.
        self.remote: Any = None
        # Called as (user, device ids, deleted) after a device-list change (federation shares it).
        self.change_listeners: list[Callable[[str, list[str], bool], Awaitable[None]]] = []

    # ------------------------------------------------------------- visibility
    async def _sharing(self, user_id: str) -> set[str]:
        if self.membership is None:
            return {user_id}
        return set(await self.membership.users_sharing_a_room_in_any_state(user_id)) | {user_id}

    async def visible_users(self, requester: str) -> set[str]:
        """Users whose keys ``requester`` may query and claim."""
        return await self._sharing(requester) | await self.repo.granted_targets(requester)

    async def allow_query(self, requester: str, target: str) -> bool:
        return target in await self.visible_users(requester)

    async def grant_lookup(self, requester_user_id: str, target_user_id: str) -> None:
        """Let ``requester`` query ``target``'s keys from now on (e.g. after an e-mail lookup)."""
        if requester_user_id != target_user_id:
            await self.repo.add_grant(requester_user_id, target_user_id, self.clock.now_ms())

    async def _watchers(self, user_id: str) -> set[str]:
        """Local users who see ``user_id``'s device list (to be woken on a change)."""
        return await self._sharing(user_id) | await self.repo.grantees(user_id)

    async def _changed(self, user_id: str, device_ids: list[str] | None = None, deleted: bool = False) -> None:
        await self.notifier.notify(await self._watchers(user_id), DEVICE_LISTS_STREAM)
        for listener in self.change_listeners:
            await listener(user_id, device_ids or [], deleted)

    # ----------------------------------------------------------------- upload
    async def upload(self, user_id: str, device_id: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST /keys/upload for the requester's device."""
        device_keys = body.get("device_keys")
        one_time_keys = body.get("one_time_keys")
        fallback_keys = body.get("fallback_keys", body.get("org.matrix.msc2732.fallback_keys"))
        for name, value in (("device_keys", device_keys), ("one_time_keys", one_time_keys),
                            ("fallback_keys", fallback_keys)):
            if value is not None and not isinstance(value, dict):
                raise bad_json(f"{name} must be an object")
        now = self.clock.now_ms()
        stored = await self.repo.get_device_keys(user_id, device_id)
        new_keys = (
            self._check_device_keys(user_id, device_id, device_keys, stored, now)
            if device_keys else None
        )
        identity = new_keys.ed25519_key if new_keys else (stored.ed25519_key if stored else None)
        otks = self._check_one_time_keys(user_id, device_id, one_time_keys or {}, identity, "one_time_keys")
        fallbacks = self._check_one_time_keys(user_id, device_id, fallback_keys or {}, identity, "fallback_keys")
        if len({k.algorithm for k in fallbacks}) != len(fallbacks):
            raise bad_param("fallback_keys: at most one key per algorithm")
        if otks:
            existing = await self.repo.existing_one_time_keys(user_id, device_id, otks)
            for key in otks:
                old = existing.get((key.algorithm, key.key_id))
                if old is not None and old != key.key_json:
                    raise bad_param(f"One-time key {key.algorithm}:{key.key_id} already exists with another value")
            counts = await self.repo.count_one_time_keys(user_id, device_id)
            for algorithm in {k.algorithm for k in otks}:
                adding = sum(1 for k in otks if k.algorithm == algorithm
                             and (k.algorithm, k.key_id) not in existing)
                if counts.get(algorithm, 0) + adding > MAX_ONE_TIME_KEYS_PER_ALGORITHM:
                    raise bad_param(
                        f"At most {MAX_ONE_TIME_KEYS_PER_ALGORITHM} unclaimed one-time keys per algorithm"
                    )

        if new_keys is not None and (stored is None or stored.key_json != new_keys.key_json):
            await self.repo.store_device_keys(new_keys, now)
            await self._changed(user_id, [device_id])
        if otks:
            await self.repo.add_one_time_keys(user_id, device_id, otks, now)
        for key in fallbacks:
            await self.repo.set_fallback_key(user_id, device_id, key.algorithm, key.key_id, key.key_json, now)

        response: dict[str, Any] = {"one_time_key_counts": await self.one_time_key_counts(user_id, device_id)}
        response.update(self._spk_fields(new_keys or stored, now))
        return response

    def _check_device_keys(
        self, user_id: str, device_id: str, obj: dict[str, Any], stored: StoredDeviceKeys | None, now: int
    ) -> StoredDeviceKeys:
        if obj.get("user_id") != user_id:
            raise bad_param("device_keys.user_id must be your own user id")
        if obj.get("device_id") != device_id:
            raise bad_param("device_keys.device_id must be the id of the uploading device")
        algorithms = obj.get("algorithms")
        if (not isinstance(algorithms, list) or len(algorithms) > 32
                or not all(isinstance(a, str) and 0 < len(a) <= 128 for a in algorithms)):
            raise bad_json("device_keys.algorithms must be a list of strings")
        keys = obj.get("keys")
        if not isinstance(keys, dict) or not keys:
            raise bad_json("device_keys.keys must be an object")
        for name, value in keys.items():
            algorithm, key_device = _split_key_name(name, "device_keys.keys")
            if key_device != device_id:
                raise bad_param(f"device_keys.keys: {name!r} is not a key of device {device_id}")
            if algorithm in ("ed25519", "curve25519"):
                _b64_32(value, f"device_keys.keys[{name}]")
            elif not isinstance(value, str) or not 0 < len(value) <= 1024:
                raise bad_json(f"device_keys.keys[{name}] must be a string")
        ed25519 = keys.get(f"ed25519:{device_id}")
        if ed25519 is None:
            raise bad_param(f"device_keys.keys must contain ed25519:{device_id}")
        if not isinstance(obj.get("signatures"), dict):
            raise bad_json("device_keys.signatures must be an object")
        key_json = _canonical(obj, "device_keys")
        public = _public_key(ed25519)
        _verify(obj, user_id, device_id, public, "device_keys")
        if stored is not None and stored.ed25519_key != ed25519:
            raise bad_param("The device's Ed25519 key cannot change; log in as a new device instead")

        spk_key: str | None = None
        spk_created: int | None = None
        spk = obj.get(SIGNED_PRE_KEY_FIELD)
        if spk is not None:
            if not isinstance(spk, dict):
                raise bad_json(f"{SIGNED_PRE_KEY_FIELD} must be an object")
            spk_key = _b64_32(spk.get("key"), f"{SIGNED_PRE_KEY_FIELD}.key")
            created = spk.get("created_ts")
            if created is not None and (not isinstance(created, int) or isinstance(created, bool)
                                        or created < 0):
                raise bad_param(f"{SIGNED_PRE_KEY_FIELD}.created_ts must be a non-negative integer")
            _verify(spk, user_id, device_id, public, SIGNED_PRE_KEY_FIELD)
            if stored is not None and stored.spk_key == spk_key and stored.spk_created_ts is not None:
                spk_created = stored.spk_created_ts
            else:
                spk_created = min(created, now) if created is not None else now
        return StoredDeviceKeys(user_id, device_id, ed25519, key_json, spk_key, spk_created)

    def _check_one_time_keys(
        self, user_id: str, device_id: str, keys: dict[str, Any], identity: str | None, what: str
    ) -> list[NewOneTimeKey]:
        public = _public_key(identity) if identity else None
        out: list[NewOneTimeKey] = []
        for name, value in keys.items():
            algorithm, key_id = _split_key_name(name, what)
            if isinstance(value, str):
                if _requires_signature(algorithm):
                    raise bad_param(f"{what}[{name}]: {algorithm} keys must be signed objects")
                if not 0 < len(value) <= 1024:
                    raise bad_param(f"{what}[{name}]: invalid key")
                if algorithm == "curve25519":
                    _b64_32(value, f"{what}[{name}]")
            elif isinstance(value, dict):
                if not isinstance(value.get("key"), str):
                    raise bad_json(f"{what}[{name}].key must be a string")
                if algorithm == KEM_ALGORITHM:
                    check_kem_key(value, f"{what}[{name}]", last_resort=what == "fallback_keys")
                elif algorithm in ("signed_curve25519", "curve25519") or algorithm.startswith("im.parley."):
                    _b64_32(value["key"], f"{what}[{name}].key")
                sigs = value.get("signatures")
                if sigs is not None and not isinstance(sigs, dict):
                    raise bad_json(f"{what}[{name}].signatures must be an object")
                signed_by_device = isinstance(sigs, dict) and isinstance(sigs.get(user_id), dict) \
                    and f"ed25519:{device_id}" in sigs[user_id]
                if _requires_signature(algorithm) or signed_by_device:
                    if public is None:
                        raise bad_param(f"{what}: upload device keys before signed keys")
                    _verify(value, user_id, device_id, public, f"{what}[{name}]")
            else:
                raise bad_json(f"{what}[{name}] must be a string or an object")
            out.append(NewOneTimeKey(algorithm, key_id, _canonical(value, f"{what}[{name}]")))
        return out

    def _spk_fields(self, keys: StoredDeviceKeys | None, now: int) -> dict[str, Any]:
        if keys is None or keys.spk_created_ts is None:
            return {}
        return {SPK_CREATED_FIELD: keys.spk_created_ts,
                SPK_AGE_FIELD: max(0, now - keys.spk_created_ts)}

    async def one_time_key_counts(self, user_id: str, device_id: str) -> dict[str, int]:
        counts = await self.repo.count_one_time_keys(user_id, device_id)
        # Like Synapse: clients (Element, nio) expect this entry even at zero.
        counts.setdefault("signed_curve25519", 0)
        return counts

    # ------------------------------------------------------------ query/claim
    def _parse_users(self, value: Any, what: str) -> list[str]:
        if not isinstance(value, dict):
            raise bad_json(f"{what} must be an object")
        if len(value) > MAX_QUERY_USERS:
            raise bad_param(f"{what}: at most {MAX_QUERY_USERS} users at once")
        for user_id in value:
            parse_user_id(user_id)
        return list(value)

    def _is_local(self, user_id: str) -> bool:
        return parse_user_id(user_id)[1] == self.server_name

    def _remote_failures(self, user_ids: list[str]) -> dict[str, Any]:
        return {
            parse_user_id(u)[1]: {"errcode": Codes.UNKNOWN, "error": "Federation is not available"}
            for u in user_ids if not self._is_local(u)
        }

    async def query(self, requester: str, body: dict[str, Any], visible: set[str] | None = None) -> dict[str, Any]:
        """POST /keys/query (``visible``: whose keys the requester may see, default: computed for the user)"""
        wanted = body.get("device_keys")
        users = self._parse_users(wanted, "device_keys")
        assert isinstance(wanted, dict)
        filters: dict[str, set[str] | None] = {}
        for user_id in users:
            devices = wanted[user_id]
            if devices is None:
                devices = []
            if not isinstance(devices, list) or not all(isinstance(d, str) for d in devices):
                raise bad_json("device_keys values must be lists of device ids")
            filters[user_id] = {d for d in devices} if devices else None
        if visible is None:
            visible = await self.visible_users(requester)
        allowed = [u for u in users if self._is_local(u) and u in visible]
        result: dict[str, dict[str, Any]] = {u: {} for u in users if self._is_local(u)}
        now = self.clock.now_ms()
        for keys in await self.repo.device_keys_for_users(allowed):
            wanted_devices = filters[keys.user_id]
            if wanted_devices is not None and keys.device_id not in wanted_devices:
                continue
            obj = json.loads(keys.key_json)
            unsigned: dict[str, Any] = {}
            if keys.spk_created_ts is not None:
                unsigned[SPK_AGE_FIELD] = max(0, now - keys.spk_created_ts)
            if unsigned:
                obj["unsigned"] = unsigned
            result[keys.user_id][keys.device_id] = obj
        response: dict[str, Any] = {"device_keys": result, "failures": {}}
        remote = {u: list(wanted[u] or []) for u in users if not self._is_local(u)}
        if remote and self.remote is not None:
            response["failures"] = await self.remote.query(remote, response)
        else:
            response["failures"] = self._remote_failures(users)
        for extension in self.query_extensions:
            await extension(requester, allowed, response)
        return response

    async def claim(self, requester: str, body: dict[str, Any], visible: set[str] | None = None) -> dict[str, Any]:
        """POST /keys/claim (``visible`` as for :meth:`query`)"""
        wanted = body.get("one_time_keys")
        users = self._parse_users(wanted, "one_time_keys")
        assert isinstance(wanted, dict)
        requests: list[tuple[str, str, str]] = []
        for user_id in users:
            devices = wanted[user_id]
            if not isinstance(devices, dict):
                raise bad_json("one_time_keys values must be objects of device id -> algorithm")
            for device_id, algorithm in devices.items():
                if not isinstance(algorithm, str) or not _ALGORITHM.match(algorithm):
                    raise bad_param(f"Invalid algorithm {str(algorithm)[:80]!r}")
                if is_valid_device_id(device_id):
                    requests.append((user_id, device_id, algorithm))
        if len(requests) > MAX_QUERY_USERS:
            raise bad_param(f"At most {MAX_QUERY_USERS} devices at once")
        if visible is None:
            visible = await self.visible_users(requester)
        result: dict[str, dict[str, Any]] = {}
        for user_id, device_id, algorithm in requests:
            if not self._is_local(user_id) or user_id not in visible:
                continue
            got = None
            if await self._may_claim(requester, user_id, device_id):
                got = await self.repo.claim_one_time_key(user_id, device_id, algorithm)
                if got is not None:
                    await self.limiter.record(self.claim_limit, f"{requester}|{user_id}|{device_id}")
            if got is None:
                got = await self.repo.claim_fallback_key(user_id, device_id, algorithm)
            if got is not None:
                key_id, key_json = got
                result.setdefault(user_id, {})[device_id] = {f"{algorithm}:{key_id}": json.loads(key_json)}
        remote: dict[str, dict[str, str]] = {}
        for user_id, device_id, algorithm in requests:
            if not self._is_local(user_id):
                remote.setdefault(user_id, {})[device_id] = algorithm
        if remote and self.remote is not None:
            return {"one_time_keys": result, "failures": await self.remote.claim(remote, result)}
        return {"one_time_keys": result, "failures": self._remote_failures(users)}

    async def _may_claim(self, requester: str, user_id: str, device_id: str) -> bool:
        try:
            await self.limiter.ensure_below(self.claim_limit, f"{requester}|{user_id}|{device_id}")
        except MatrixError:
            return False
        return True

    # ------------------------------------------------------------ device lists
    async def changes(self, requester: str, from_token: str, to_token: str) -> dict[str, Any]:
        """GET /keys/changes"""
        start, end = SyncToken.decode(from_token), SyncToken.decode(to_token)
        joined = await self.membership.joined_rooms(requester) if self.membership is not None else []
        delta = await self.device_list_delta(requester, joined, start, end)
        return {"changed": sorted(delta.changed), "left": sorted(delta.left)}

    async def device_list_delta(
        self, user_id: str, joined_room_ids: list[str], since: SyncToken, upto: SyncToken,
        own_membership_events: list[Any] | None = None, room_events: dict[str, list[Any]] | None = None,
    ) -> DeviceListDelta:
        """What ``device_lists`` reports between two tokens.

        ``changed``: visible users whose devices changed in the device_lists
        stream, plus users who started sharing a room with ``user_id`` (a join
        in one of its rooms, or its own join) in the events stream.
        ``left``: users who stopped sharing every room (a leave, kick or ban in
        one of its rooms, or its own leave) and were not looked up.
        """
        lo, hi = sorted((since.get(DEVICE_LISTS_STREAM), upto.get(DEVICE_LISTS_STREAM)))
        changed = await self.repo.changed_users(lo, hi)
        visible: set[str] | None = None
        if changed:
            visible = await self.visible_users(user_id)
            changed &= visible
        joined, left = await self._membership_changes(user_id, joined_room_ids, since, upto,
                                                      own_membership_events, room_events)
        if joined or left:
            visible = visible if visible is not None else await self.visible_users(user_id)
            changed |= joined & visible
            left -= visible
        return DeviceListDelta(changed, left - {user_id})

    async def _membership_changes(
        self, user_id: str, joined_room_ids: list[str], since: SyncToken, upto: SyncToken,
        own_membership_events: list[Any] | None = None, room_events: dict[str, list[Any]] | None = None,
    ) -> tuple[set[str], set[str]]:
        """``room_events``: rooms whose events in (since, upto] the caller read whole
        (``SyncContext.room_events``): their member changes need no query."""
        after, until = since.get("events"), upto.get("events")
        if self.history is None or self.membership is None or until <= after:
            return set(), set()
        joined: set[str] = set()
        left: set[str] = set()
        own_rooms: dict[str, str] = {}
        if own_membership_events is None:
            own_membership_events = await self.history.user_membership_events(user_id, after, until)
        for event in own_membership_events:
            own_rooms[event.room_id] = event.membership or ""
        for room_id, membership in own_rooms.items():
            members = set(await self.membership.joined_users(room_id))
            if membership == "join":
                joined |= members
            elif membership in ("leave", "ban"):
                left |= members
        # One query for every joined room (not one per room: this runs on every
        # incremental /sync whose events position moved).
        rooms = [r for r in joined_room_ids if own_rooms.get(r) != "join"]
        read = room_events or {}
        for event in [*_latest_members(read, rooms),
                      *await self.history.member_changes([r for r in rooms if r not in read], after, until)]:
            if event.type != "m.room.member" or not event.state_key:
                continue
            if event.membership == "join":
                joined.add(event.state_key)
            elif event.membership in ("leave", "ban"):
                left.add(event.state_key)
        return joined - {user_id}, left - {user_id}

    async def on_devices_deleted(self, user_id: str, device_ids: list[str]) -> None:
        """DeviceService.on_deleted listener: forget the devices' keys; a device-list change."""
        if not device_ids:
            return
        await self.repo.delete_devices(user_id, device_ids, self.clock.now_ms())
        await self._changed(user_id, device_ids, deleted=True)

    async def device_list_changed(self, user_id: str, device_ids: list[str]) -> None:
        """Record a device-list change for ``user_id`` (for other services) and wake watchers."""
        await self.repo.record_change(user_id, device_ids, self.clock.now_ms())
        await self._changed(user_id, device_ids)

    async def contribute(self, ctx: SyncContext, response: dict[str, Any]) -> bool:
        """SyncContributor: key counts, the signed pre-key's age and device_lists."""
        now = self.clock.now_ms()
        # Counts, fallback key types and the signed pre-key's age in one round trip.
        counts, fallback, spk_created_ts = await self.repo.sync_summary(ctx.user_id, ctx.device_id)
        counts.setdefault("signed_curve25519", 0)  # as one_time_key_counts
        response["device_one_time_keys_count"] = counts
        response["device_unused_fallback_key_types"] = fallback
        if spk_created_ts is not None:
            response.update({SPK_CREATED_FIELD: spk_created_ts,
                             SPK_AGE_FIELD: max(0, now - spk_created_ts)})
        lists = response.setdefault("device_lists", {})
        lists.setdefault("changed", [])
        lists.setdefault("left", [])
        if ctx.since is None or not ctx.needs(DEVICE_LIST_INPUTS):
            return False
        delta = await self.device_list_delta(ctx.user_id, ctx.joined_room_ids, ctx.since, ctx.upto,
                                             ctx.own_membership_events, ctx.room_events)
        if not delta.changed and not delta.left:
            return False
        lists["changed"] = sorted(set(lists["changed"]) | delta.changed)
        lists["left"] = sorted(set(lists["left"]) | delta.left)
        return True

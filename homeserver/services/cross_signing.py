"""Cross-signing (client-server API, "Cross-signing"): ``/keys/device_signing/upload``,
``/keys/signatures/upload`` and the cross-signing parts of ``/keys/query``.

The server checks what the spec requires — key shapes, the master key's
signature on the self-signing and user-signing keys, and that every uploaded
signature is valid for the object it signs (canonical JSON, Ed25519) — and
stores the signatures apart from the signed objects, merging them in when the
keys are queried.
"""

from __future__ import annotations

import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.canonical_json import (
    CanonicalJsonError,
    encode_canonical_json,
    unpadded_b64decode,
    verify_signed_json,
)
from common.errors import Codes, MatrixError, bad_json, bad_param
from homeserver.services.accounts import AccountService
from homeserver.services.clock import Clock
from homeserver.services.keys import KeyService
from homeserver.storage.cross_signing import CrossSigningRepository, SignatureRow

JsonDict = dict[str, Any]

USAGES = {"master_key": "master", "self_signing_key": "self_signing", "user_signing_key": "user_signing"}
MAX_KEY_ID = 128  # the storage's limit; device ids and base64 Ed25519 keys are shorter
RESULT_FIELDS = {"master": "master_keys", "self_signing": "self_signing_keys", "user_signing": "user_signing_keys"}


def _public(b64: str) -> Ed25519PublicKey:
    try:
        raw = unpadded_b64decode(b64)
        if len(raw) != 32:
            raise ValueError
        return Ed25519PublicKey.from_public_bytes(raw)
    except (ValueError, TypeError):
        raise bad_param("Cross-signing keys must be base64 Ed25519 public keys") from None


def key_of(obj: JsonDict) -> str:
    """The single Ed25519 public key of a cross-signing key object."""
    keys = obj.get("keys")
    if not isinstance(keys, dict) or len(keys) != 1:
        raise bad_json("A cross-signing key has exactly one key in keys")
    (name, value), = keys.items()
    if not isinstance(name, str) or name != f"ed25519:{value}":
        raise bad_param("Cross-signing keys are named ed25519:<public key>")
    _public(str(value))
    return str(value)


def _unsigned_body(obj: JsonDict) -> bytes:
    try:
        return encode_canonical_json({k: v for k, v in obj.items() if k not in ("signatures", "unsigned")})
    except CanonicalJsonError as exc:
        raise bad_json(str(exc)) from None


class CrossSigningService:
    def __init__(self, repo: CrossSigningRepository, keys: KeyService, accounts: AccountService,
                 clock: Clock) -> None:
        self.repo = repo
        self.keys = keys
        self.accounts = accounts
        self.clock = clock

    def _check_key(self, user_id: str, usage: str, obj: Any, master: str | None) -> str:
        if not isinstance(obj, dict):
            raise bad_json(f"The {usage} key must be an object")
        if obj.get("user_id") != user_id:
            raise bad_param("Cross-signing keys must be your own")
        usages = obj.get("usage")
        if not isinstance(usages, list) or usage not in usages:
            raise bad_param(f"The {usage} key must list {usage!r} in usage")
        public = key_of(obj)
        if usage != "master":
            if master is None:
                raise bad_param(f"Upload a master key before the {usage} key")
            if not verify_signed_json(obj, user_id, master, _public(master)):
                raise MatrixError(400, Codes.INVALID_SIGNATURE, f"The {usage} key is not signed by the master key")
        return public

    async def upload(self, user_id: str, body: JsonDict, ip: str | None) -> None:
        """POST /keys/device_signing/upload"""
        stored = (await self.repo.keys_of([user_id])).get(user_id, {})
        new = {usage: body[field] for field, usage in USAGES.items() if body.get(field) is not None}
        if not new:
            return
        master_obj = new.get("master", stored.get("master"))
        master = self._check_key(user_id, "master", master_obj, None) if master_obj is not None else None
        publics = {usage: self._check_key(user_id, usage, obj, master) for usage, obj in new.items()}
        changed = {u: o for u, o in new.items() if stored.get(u) != o}
        if not changed:
            return
        if "master" in stored:
            # Replacing existing cross-signing keys needs the password (spec: first upload does not).
            await self.accounts.reauthenticate(body.get("auth"), "device_signing_upload", user_id, ip)
        now = self.clock.now_ms()
        for usage, obj in changed.items():
            await self.repo.store_key(user_id, usage, publics[usage], obj, now)
        await self.keys.device_list_changed(user_id, [])

    async def upload_signatures(self, user_id: str, body: JsonDict) -> JsonDict:
        """POST /keys/signatures/upload"""
        failures: dict[str, dict[str, JsonDict]] = {}
        mine = (await self.repo.keys_of([user_id])).get(user_id, {})
        changed: set[str] = set()
        for target_user, by_key in body.items():
            if not isinstance(by_key, dict):
                raise bad_json("Signatures are grouped by user id, then key id")
            for key_id, obj in by_key.items():
                try:
                    rows = await self._check_signed(user_id, mine, target_user, key_id, obj)
                except MatrixError as exc:
                    failures.setdefault(target_user, {})[key_id] = {"errcode": exc.errcode, "error": exc.message}
                    continue
                for row in rows:
                    await self.repo.add_signature(row, self.clock.now_ms())
                changed.add(target_user)
        for target in changed:
            await self.keys.device_list_changed(target, [])
        return {"failures": failures}

    async def _check_signed(
        self, user_id: str, mine: dict[str, JsonDict], target_user: str, key_id: str, obj: Any
    ) -> list[SignatureRow]:
        if not isinstance(obj, dict) or not isinstance(obj.get("signatures"), dict):
            raise bad_json("A signed object with signatures is required")
        sigs = obj["signatures"].get(user_id)
        if not isinstance(sigs, dict) or not sigs:
            raise MatrixError(400, Codes.INVALID_SIGNATURE, "No signature by you")
        if not isinstance(key_id, str) or len(key_id) > MAX_KEY_ID:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown key")
        target, signers = await self._target(user_id, mine, target_user, key_id)
        if target is None:
            raise MatrixError(404, Codes.NOT_FOUND, "Unknown key")
        if _unsigned_body(target) != _unsigned_body(obj):
            raise MatrixError(400, Codes.INVALID_SIGNATURE, "The signed object differs from the stored key")
        rows = []
        for name, signature in sigs.items():
            signer = str(name).partition(":")[2]
            if signer not in signers or not isinstance(signature, str):
                continue
            if not verify_signed_json(obj, user_id, signer, _public(signers[signer])):
                raise MatrixError(400, Codes.INVALID_SIGNATURE, f"Invalid signature by {name}")
            rows.append(SignatureRow(target_user, key_id, user_id, signer, signature))
        if not rows:
            raise MatrixError(400, Codes.INVALID_SIGNATURE, "No signature by a key allowed to sign this")
        return rows

    async def _target(
        self, user_id: str, mine: dict[str, JsonDict], target_user: str, key_id: str
    ) -> tuple[JsonDict | None, dict[str, str]]:
        """The stored object named by (target_user, key_id) and the keys that may sign it
        (key id -> public key)."""
        if target_user == user_id:
            master = mine.get("master")
            if master is not None and key_of(master) == key_id:
                devices = await self.keys.repo.device_keys_for_users([user_id])
                return master, {d.device_id: d.ed25519_key for d in devices}
            device = await self.keys.repo.get_device_keys(user_id, key_id)
            ssk = mine.get("self_signing")
            if device is None or ssk is None:
                return None, {}
            return json.loads(device.key_json), {key_of(ssk): key_of(ssk)}
        theirs = (await self.repo.keys_of([target_user])).get(target_user, {}).get("master")
        usk = mine.get("user_signing")
        if theirs is None or key_of(theirs) != key_id or usk is None:
            return None, {}
        return theirs, {key_of(usk): key_of(usk)}

    async def add_to_query(self, requester: str, users: list[str], result: JsonDict) -> None:
        """Cross-signing keys of ``users`` and the signatures the requester may see."""
        keys = await self.repo.keys_of(users)
        for field in RESULT_FIELDS.values():
            result.setdefault(field, {})
        for user, by_usage in keys.items():
            for usage, obj in by_usage.items():
                if usage == "user_signing" and user != requester:
                    continue  # only its owner sees the user-signing key
                result[RESULT_FIELDS[usage]][user] = obj
        for row in await self.repo.signatures_for(users):
            # Others' signatures on a user's keys are private to the signer (as on Synapse).
            if row.signer_user_id not in (row.target_user_id, requester):
                continue
            target = result["device_keys"].get(row.target_user_id, {}).get(row.target_key_id)
            master = result["master_keys"].get(row.target_user_id)
            if target is None and master is not None and key_of(master) == row.target_key_id:
                target = master
            if target is not None:
                signatures = target.setdefault("signatures", {}).setdefault(row.signer_user_id, {})
                signatures[f"ed25519:{row.signer_key_id}"] = row.signature

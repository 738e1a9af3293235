"""The authorisation rule of an invite made good by a third-party invite (spec, room
versions 1-12, rule 5.3.1 of the ``m.room.member`` rules): the identity server signed
that the invited identifier belongs to the target user, with a key the
``m.room.third_party_invite`` event published."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from common.canonical_json import CanonicalJsonError, signable_bytes
from homeserver.services.event_auth import AuthError, StateMap

JsonDict = dict[str, Any]


def _b64(text: str) -> bytes:
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)


def published_keys(content: JsonDict) -> list[str]:
    """The public keys (unpadded base64) of an ``m.room.third_party_invite`` event."""
    keys = [content["public_key"]] if isinstance(content.get("public_key"), str) else []
    listed = content.get("public_keys")
    if isinstance(listed, list):
        keys += [k["public_key"] for k in listed if isinstance(k, dict) and isinstance(k.get("public_key"), str)]
    return keys


def verifying_keys(signed: JsonDict, keys: list[str]) -> list[str]:
    """Those of ``keys`` that made one of the signatures of ``signed``."""
    signatures = signed.get("signatures")
    if not isinstance(signatures, dict):
        return []
    try:
        message = signable_bytes(signed)
    except CanonicalJsonError:
        return []
    found: list[str] = []
    for by_server in signatures.values():
        if not isinstance(by_server, dict):
            continue
        for signature in by_server.values():
            for key in keys:
                try:
                    Ed25519PublicKey.from_public_bytes(_b64(key)).verify(_b64(str(signature)), message)
                except (ValueError, binascii.Error, InvalidSignature):
                    continue
                if key not in found:
                    found.append(key)
    return found


def check_third_party_invite(event: JsonDict, tpi: Any, state: StateMap, target: str,
                             target_membership: str) -> None:
    if target_membership == "ban":
        raise AuthError(f"{target} is banned from the room")
    signed = tpi.get("signed") if isinstance(tpi, dict) else None
    if not isinstance(signed, dict) or not isinstance(signed.get("mxid"), str) \
            or not isinstance(signed.get("token"), str):
        raise AuthError("third_party_invite.signed must have mxid and token")
    if signed["mxid"] != target:
        raise AuthError("third_party_invite.signed.mxid is not the invited user")
    invite = state.get(("m.room.third_party_invite", signed["token"]))
    if invite is None:
        raise AuthError("No third-party invite with that token")
    if invite.get("sender") != event.get("sender"):
        raise AuthError("Only the sender of the third-party invite can complete it")
    if not verifying_keys(signed, published_keys(invite.get("content") or {})):
        raise AuthError("The identity server's signature does not match the invite's public keys")

"""Canonical JSON and Ed25519 JSON signatures, as the Matrix spec defines them.

See the appendix "Signing JSON" of the Matrix specification: the object is
stripped of ``signatures`` and ``unsigned``, encoded as canonical JSON
(sorted keys, no insignificant whitespace, UTF-8, no floats), signed, and
the signature is stored as unpadded base64 under
``signatures[entity][algorithm:key_id]``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

JsonDict = dict[str, Any]

# Canonical JSON forbids integers outside the IEEE-754 safe range.
_MAX_SAFE_INT = 2**53 - 1


class CanonicalJsonError(ValueError):
    """The value cannot be represented as canonical JSON."""


def _check(value: Any) -> None:
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return
    if isinstance(value, int):
        if not -_MAX_SAFE_INT <= value <= _MAX_SAFE_INT:
            raise CanonicalJsonError("integer out of range for canonical JSON")
        return
    if isinstance(value, float):
        raise CanonicalJsonError("floats are not allowed in canonical JSON")
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalJsonError("object keys must be strings")
            _check(item)
        return
    if isinstance(value, (list, tuple)):
        for item in value:
            _check(item)
        return
    raise CanonicalJsonError(f"unsupported type {type(value).__name__}")


def encode_canonical_json(value: Any) -> bytes:
    _check(value)
    return json.dumps(
        value, ensure_ascii=False, separators=(",", ":"), sort_keys=True
    ).encode("utf-8")


def unpadded_b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii").rstrip("=")


def unpadded_b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64 with or without padding."""
    if not isinstance(text, str):
        raise ValueError("base64 value must be a string")
    padded = text + "=" * (-len(text) % 4)
    alt = b"-_" if ("-" in text or "_" in text) else None
    return base64.b64decode(padded, altchars=alt, validate=True)


def signable_bytes(obj: JsonDict) -> bytes:
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return encode_canonical_json(stripped)


def sign_json(obj: JsonDict, entity: str, key_id: str, key: Ed25519PrivateKey) -> JsonDict:
    """Add ``signatures[entity]["ed25519:" + key_id]`` to ``obj`` (in place) and return it."""
    signature = key.sign(signable_bytes(obj))
    sigs = obj.setdefault("signatures", {})
    sigs.setdefault(entity, {})[f"ed25519:{key_id}"] = unpadded_b64encode(signature)
    return obj


def verify_signed_json(
    obj: JsonDict, entity: str, key_id: str, public_key: Ed25519PublicKey
) -> bool:
    """True when ``obj`` carries a valid signature by ``entity`` with ``key_id``."""
    try:
        sig_b64 = obj["signatures"][entity][f"ed25519:{key_id}"]
        signature = unpadded_b64decode(sig_b64)
        public_key.verify(signature, signable_bytes(obj))
    except (KeyError, TypeError, ValueError, InvalidSignature, CanonicalJsonError):
        return False
    return True

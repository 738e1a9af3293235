"""Signed ML-KEM-1024 pre-keys for PQXDH (``common.crypto.pqxdh``) in the key service.

They ride on the one-time and fallback key machinery of ``keys.py`` under one
algorithm name, :data:`KEM_ALGORITHM` (``im.parley.signed_mlkem1024``):

* ``one_time_keys`` entries are one-time KEM pre-keys (``PQOPK``), each handed
  out by ``/keys/claim`` **at most once** (the same claim as every one-time
  key, safe under concurrent claims on several instances), counted per
  algorithm in ``/sync`` ``device_one_time_keys_count``;
* the ``fallback_keys`` entry is the device's signed **last-resort** KEM
  pre-key (``PQSPK``), handed out whenever no one-time KEM key is left, until
  the device replaces it; ``/sync`` lists the algorithm in
  ``device_unused_fallback_key_types`` while it has not been handed out.

A client claims its peer's X25519 one-time key and KEM key in two
``/keys/claim`` requests (Matrix claims one algorithm per device per request).

The server checks what it can without trusting anybody: the object is
:meth:`common.crypto.pqxdh.KemPreKey.signed_public` -- ``{"usage", "key_id",
"kem": "ml-kem-1024", "key": <b64 of the type byte and 1568 key bytes>,
"signatures"}``, signed by the device's Ed25519 key (checked in ``keys.py``),
with the usage that matches where it is uploaded.  Clients verify the
signature again before use; the server only keeps garbage out.
"""

from __future__ import annotations

import base64
from typing import Any

from common.crypto.pqxdh import (
    KEM_KEY_ALGORITHM,
    KEM_LAST_RESORT_USAGE,
    KEM_NAME,
    KEM_PREKEY_USAGE,
    KEM_PUBLIC_LEN,
    KEM_TYPE_MLKEM1024,
)
from common.errors import bad_param

KEM_ALGORITHM = KEM_KEY_ALGORITHM
_ENCODED_LEN = 1 + KEM_PUBLIC_LEN
_MAX_B64 = (_ENCODED_LEN + 2) // 3 * 4


def check_kem_key(value: dict[str, Any], what: str, *, last_resort: bool) -> None:
    """Validate the shape of a signed KEM pre-key object (the signature is checked by the caller)."""
    usage = KEM_LAST_RESORT_USAGE if last_resort else KEM_PREKEY_USAGE
    if value.get("usage") != usage:
        raise bad_param(f"{what}.usage must be {usage!r} here")
    if value.get("kem") != KEM_NAME:
        raise bad_param(f"{what}.kem must be {KEM_NAME!r}")
    key_id = value.get("key_id")
    if not isinstance(key_id, int) or isinstance(key_id, bool) or not 0 <= key_id < 2**32:
        raise bad_param(f"{what}.key_id must be an integer")
    encoded = value.get("key")
    if not isinstance(encoded, str) or len(encoded) > _MAX_B64:
        raise bad_param(f"{what}.key must be base64 of an encoded ML-KEM-1024 key")
    try:
        raw = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except ValueError:
        raise bad_param(f"{what}.key is not valid base64") from None
    if len(raw) != _ENCODED_LEN or raw[0] != KEM_TYPE_MLKEM1024:
        raise bad_param(f"{what}.key must encode an ML-KEM-1024 public key ({_ENCODED_LEN} bytes)")

"""The size limits of a PDU (server-server API, "Size limits" of the client-server spec's events).

A PDU is at most 65536 bytes in canonical JSON (signatures and all); its
``sender``, ``room_id``, ``state_key`` and ``type`` at most 255 bytes each.
An incoming PDU over a limit is refused before anything else is done with it.
"""

from __future__ import annotations

from typing import Any

from common.canonical_json import encode_canonical_json
from common.errors import Codes, MatrixError

MAX_PDU_BYTES = 65536
MAX_FIELD_BYTES = 255
LIMITED_FIELDS = ("sender", "room_id", "state_key", "type")


def check_pdu_size(pdu: dict[str, Any]) -> None:
    for name in LIMITED_FIELDS:
        value = pdu.get(name)
        if isinstance(value, str) and len(value.encode()) > MAX_FIELD_BYTES:
            raise MatrixError(413, Codes.TOO_LARGE, f"The PDU's {name} is longer than {MAX_FIELD_BYTES} bytes")
    try:
        size = len(encode_canonical_json(pdu))
    except (TypeError, ValueError):
        raise MatrixError(400, Codes.BAD_JSON, "The PDU is not canonical JSON") from None
    if size > MAX_PDU_BYTES:
        raise MatrixError(413, Codes.TOO_LARGE, f"The PDU has {size} bytes, more than {MAX_PDU_BYTES}")

"""Versioned serialisation helpers shared by every stateful object.

Each stateful class exposes ``to_dict()`` / ``from_dict()``; the dict always
carries ``"type"`` (what it is) and ``"v"`` (format version).  Binary values
are unpadded base64 (the Matrix convention), integers are plain JSON
integers, so :func:`dumps` can emit canonical JSON.  ``from_dict`` accepts
every version listed in the class's supported set; a newer format adds a
version number and an upgrade branch, never reinterprets an old one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from common.canonical_json import (
    encode_canonical_json,
    unpadded_b64decode,
    unpadded_b64encode,
)
from common.crypto.errors import InvalidHeader, UnsupportedVersion

JsonDict = dict[str, Any]


def b64e(data: bytes) -> str:
    """Unpadded standard base64, as Matrix uses."""
    return unpadded_b64encode(data)


def b64d(text: object, *, length: int | None = None, field: str = "value") -> bytes:
    """Decode unpadded base64, raising :class:`InvalidHeader` on bad input."""
    if not isinstance(text, str):
        raise InvalidHeader(f"{field}: expected a base64 string")
    try:
        data = unpadded_b64decode(text)
    except ValueError as exc:
        raise InvalidHeader(f"{field}: invalid base64") from exc
    if length is not None and len(data) != length:
        raise InvalidHeader(f"{field}: expected {length} bytes, got {len(data)}")
    return data


def get_int(d: JsonDict, key: str, *, lo: int = 0, hi: int = 2**32 - 1) -> int:
    value = d.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
        raise InvalidHeader(f"{key}: expected an integer in [{lo}, {hi}]")
    return value


def get_str(d: JsonDict, key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise InvalidHeader(f"{key}: expected a string")
    return value


def get_list(d: JsonDict, key: str) -> list[Any]:
    value = d.get(key)
    if not isinstance(value, list):
        raise InvalidHeader(f"{key}: expected a list")
    return value


def check_version(d: object, type_name: str, supported: Iterable[int]) -> int:
    """Validate ``d["type"]`` and ``d["v"]``; return the version."""
    if not isinstance(d, dict):
        raise InvalidHeader(f"{type_name}: expected an object")
    if d.get("type") != type_name:
        raise InvalidHeader(f"expected type {type_name!r}, got {d.get('type')!r}")
    version = d.get("v")
    if not isinstance(version, int) or isinstance(version, bool):
        raise InvalidHeader(f"{type_name}: missing version")
    if version not in set(supported):
        raise UnsupportedVersion(f"{type_name}: unsupported version {version}")
    return version


def dumps(d: JsonDict) -> bytes:
    """Canonical JSON bytes of a serialised object (stable, diffable)."""
    return encode_canonical_json(d)


def loads(data: bytes | str) -> JsonDict:
    try:
        value = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidHeader("not valid JSON") from exc
    if not isinstance(value, dict):
        raise InvalidHeader("expected a JSON object")
    return value

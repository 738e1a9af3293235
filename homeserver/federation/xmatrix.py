"""The ``Authorization: X-Matrix`` scheme of the server-server API (sans I/O).

Spec, "Request Authentication": the origin signs the JSON object
``{"method", "uri", "origin", "destination", "content"?}`` with its server
key and sends ``X-Matrix origin="...",destination="...",key="ed25519:...",sig="..."``;
the parameters are RFC 9110 auth-params (token or quoted-string values).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from common.canonical_json import sign_json

JsonDict = dict[str, Any]

_PARAM = re.compile(r'\s*([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^",\s]*))\s*(?:,|$)')


class MalformedAuthorization(ValueError):
    """The header is not a usable X-Matrix authorization."""


@dataclass(frozen=True)
class XMatrixAuth:
    origin: str
    destination: str | None
    key_id: str
    signature: str


def request_json(method: str, uri: str, origin: str, destination: str, content: Any = None) -> JsonDict:
    """The object the origin signs; ``content`` only for requests with a JSON body."""
    obj: JsonDict = {"method": method.upper(), "uri": uri, "origin": origin, "destination": destination}
    if content is not None:
        obj["content"] = content
    return obj


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def authorization_header(method: str, uri: str, origin: str, destination: str, content: Any,
                         key_id: str, key: Ed25519PrivateKey) -> str:
    """``X-Matrix ...`` for one request; ``key_id`` is ``ed25519:<version>``."""
    version = key_id.split(":", 1)[1]
    signed = sign_json(request_json(method, uri, origin, destination, content), origin, version, key)
    signature = signed["signatures"][origin][key_id]
    params = [("origin", origin), ("destination", destination), ("key", key_id), ("sig", signature)]
    return "X-Matrix " + ",".join(f"{name}={_quote(value)}" for name, value in params)


def parse_authorization(header: str) -> XMatrixAuth:
    scheme, _, rest = header.strip().partition(" ")
    if scheme.lower() != "x-matrix":
        raise MalformedAuthorization("the Authorization scheme is not X-Matrix")
    params: dict[str, str] = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if match is None or match.end() == position:
            raise MalformedAuthorization("the X-Matrix parameters are malformed")
        name = match.group(1).lower()
        value = match.group(2) if match.group(2) is not None else match.group(3)
        if match.group(2) is not None:
            value = re.sub(r"\\(.)", r"\1", value)
        if name in params:
            raise MalformedAuthorization(f"the X-Matrix parameter {name} is repeated")
        params[name] = value
        position = match.end()
    for required in ("origin", "key", "sig"):
        if not params.get(required):
            raise MalformedAuthorization(f"the X-Matrix parameter {required} is missing")
    if not params["key"].startswith("ed25519:"):
        raise MalformedAuthorization("the X-Matrix key is not an ed25519 key")
    return XMatrixAuth(params["origin"], params.get("destination") or None, params["key"], params["sig"])

"""Outgoing federation requests: discovery, X-Matrix signing, verified TLS, typed errors.

``FederationClient.request(destination, method, path, query=..., json=...)``
is the one way this server talks to another.  ``path`` is sent as given
(callers percent-encode identifiers, e.g. ``urllib.parse.quote(id, safe="")``)
and signed exactly as sent.  TLS certificates are always verified, against
``[federation] ca_file`` or the system's trust store (``verify_tls = false``
is dev only); plain HTTP is used only for dev-mode ``http://`` overrides.
"""

from __future__ import annotations

import ssl
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import httpx

from common.canonical_json import encode_canonical_json
from common.strict_json import StrictJsonError, loads_strict
from homeserver.federation.discovery import Resolver, Route
from homeserver.federation.errors import (
    DestinationNotAllowed,
    DestinationUnreachable,
    InvalidResponse,
    RemoteError,
)
from homeserver.federation.xmatrix import authorization_header
from homeserver.services.clock import Clock
from homeserver.signing_key import SigningKey

JsonDict = dict[str, Any]
Query = dict[str, str | int | list[str]]
MAX_RESPONSE_BYTES = 64 * 1024 * 1024
WELL_KNOWN_MAX_BYTES = 64 * 1024
USER_AGENT = "Parley-Homeserver"


def tls_context(ca_file: str, verify: bool) -> ssl.SSLContext | bool:
    if not verify:
        return False
    context = ssl.create_default_context(cafile=ca_file or None)
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


class FederationClient:
    def __init__(self, server_name: str, signing_key: SigningKey, overrides: dict[str, str], clock: Clock,
                 verify: ssl.SSLContext | bool, timeout_s: float,
                 allowed: Callable[[str], bool]) -> None:
        self.server_name = server_name
        self.signing_key = signing_key
        self.allowed = allowed
        self.timeout_s = timeout_s
        self._verify = verify
        self._http = self._new_http()
        self.resolver = Resolver(overrides, self.fetch_well_known, clock)

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(verify=self._verify, http2=True, timeout=self.timeout_s, follow_redirects=False,
                                 headers={"User-Agent": USER_AGENT})

    async def close(self) -> None:
        await self._http.aclose()

    async def close_connections(self) -> None:
        """Drop the open connections (they are reopened on demand), e.g. before a peer shuts down."""
        old, self._http = self._http, self._new_http()
        await old.aclose()

    async def request(self, destination: str, method: str, path: str, *, query: Query | None = None,
                      json: JsonDict | None = None, authenticated: bool = True,
                      timeout_s: float | None = None, v1_wrapped: bool = False) -> JsonDict:
        """Send one request; the answer's JSON object, or a :class:`FederationError`.

        ``v1_wrapped``: the answer is the deprecated v1 form ``[200, {...}]`` (``send_join``,
        ``send_leave``, ``invite``); the object inside it is returned.
        """
        if destination == self.server_name:
            raise DestinationNotAllowed(destination, "a server does not send requests to itself")
        if not self.allowed(destination):
            raise DestinationNotAllowed(destination, "federation with this server is not allowed")
        uri = path + ("?" + urlencode(query, doseq=True) if query else "")
        route = await self.resolver.resolve(destination)
        body = encode_canonical_json(json) if json is not None else None
        headers = {"Host": route.host_header}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if authenticated:
            headers["Authorization"] = authorization_header(
                method, uri, self.server_name, destination, json, self.signing_key.key_id,
                self.signing_key.private_key,
            )
        return await self._send(destination, route, method, uri, headers, body, timeout_s, v1_wrapped)

    async def _send(self, destination: str, route: Route, method: str, uri: str, headers: dict[str, str],
                    body: bytes | None, timeout_s: float | None, v1_wrapped: bool = False) -> JsonDict:
        extensions: dict[str, Any] = {}
        if route.scheme == "https" and route.tls_name != route.connect_host:
            extensions["sni_hostname"] = route.tls_name
        request = self._http.build_request(
            method.upper(), route.base_url + uri, headers=headers, content=body, extensions=extensions,
            timeout=timeout_s or self.timeout_s,
        )
        try:
            response = await self._http.send(request, stream=True)
            try:
                raw = await _read_limited(response, MAX_RESPONSE_BYTES)
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            raise DestinationUnreachable(destination, f"{type(exc).__name__}: {exc}"[:300]) from None
        if raw is None:
            raise InvalidResponse(destination, "the response is too large")
        try:
            answer = loads_strict(raw, allow_floats=True) if raw.strip() else {}
        except StrictJsonError as exc:
            if response.status_code >= 400:
                raise RemoteError(destination, response.status_code, None) from None
            raise InvalidResponse(destination, f"the response is not JSON: {exc}") from None
        if response.status_code >= 400:
            raise RemoteError(destination, response.status_code, answer)
        if v1_wrapped:
            if not (isinstance(answer, list) and len(answer) == 2 and isinstance(answer[1], dict)):
                raise InvalidResponse(destination, "the v1 response is not [code, object]")
            answer = answer[1]
        if not isinstance(answer, dict):
            raise InvalidResponse(destination, "the response is not a JSON object")
        return answer

    async def fetch_well_known(self, hostname: str) -> str | None:
        """``m.server`` of ``https://hostname/.well-known/matrix/server`` (redirects followed, up to 5)."""
        url = f"https://{hostname}/.well-known/matrix/server"
        for _ in range(5):
            response = await self._http.get(url, timeout=10.0)
            if response.is_redirect and "location" in response.headers:
                url = str(response.url.join(response.headers["location"]))
                continue
            if response.status_code != 200 or len(response.content) > WELL_KNOWN_MAX_BYTES:
                return None
            value = loads_strict(response.content, allow_floats=True)
            server = value.get("m.server") if isinstance(value, dict) else None
            return server if isinstance(server, str) else None
        return None


async def _read_limited(response: httpx.Response, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


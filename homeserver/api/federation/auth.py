"""``await authenticate(request) -> origin`` for every ``/_matrix/federation/*`` handler."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from homeserver.api.http import parse_json_text


def federation(request: Request) -> Any:
    """The :class:`homeserver.federation.setup.Federation` of the homeserver serving ``request``."""
    return request.app.state.hs.federation


def request_uri(request: Request) -> str:
    """The path and query exactly as the origin sent (and signed) them."""
    raw_path: bytes = request.scope.get("raw_path") or request.scope["path"].encode()
    query: bytes = request.scope.get("query_string", b"")
    return raw_path.decode("latin-1") + ("?" + query.decode("latin-1") if query else "")


async def authenticate(request: Request) -> str:
    """The verified origin server of ``request`` (401/403/429 Matrix errors otherwise)."""
    raw = await request.body()
    content = parse_json_text(raw, "Request body") if raw.strip() else None
    headers = request.headers.getlist("authorization")
    origin: str = await federation(request).authenticator.authenticate(
        request.method, request_uri(request), headers, content
    )
    return origin

"""Behind a load balancer: the client's address from ``X-Forwarded-For``, only from trusted proxies.

The header is read only when the connecting peer is one of the configured
``trusted_proxies``; the client is the right-most address in it that is not
itself a trusted proxy (every hop appends the address it saw, so entries to
the left of the last trusted hop may be forged by the client).  Rate limits
and logs then see the real client.  Anyone else's header is ignored.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from homeserver.config import IPNetwork


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return None


class TrustedProxyMiddleware:
    def __init__(self, app: ASGIApp, trusted: Sequence[IPNetwork]) -> None:
        self.app = app
        self.trusted = tuple(trusted)

    def _is_trusted(self, address: str) -> bool:
        parsed = _parse(address)
        return parsed is not None and any(parsed in network for network in self.trusted)

    def client_address(self, peer: str, forwarded_for: Sequence[str]) -> str:
        if not self._is_trusted(peer):
            return peer
        hops = [hop.strip() for header in forwarded_for for hop in header.split(",") if hop.strip()]
        for hop in reversed(hops):
            if _parse(hop) is None:
                break  # garbage: stop believing the chain here
            if not self._is_trusted(hop):
                return hop
        return peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and self.trusted and scope.get("client"):
            headers = scope.get("headers", [])
            forwarded = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-for"]
            host, port = scope["client"]
            if forwarded:
                client = self.client_address(host, forwarded)
                if client != host:
                    scope = dict(scope, client=(client, 0))
            if self._is_trusted(host):
                proto = [v.decode("latin-1") for k, v in headers if k == b"x-forwarded-proto"]
                if proto and proto[-1].strip() in ("http", "https"):
                    scope = dict(scope, scheme=proto[-1].strip())
        await self.app(scope, receive, send)

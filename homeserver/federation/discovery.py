"""Where to reach a server: spec, "Resolving server names".

Steps: an IP literal is used as is (port 8448 unless given); a hostname
with an explicit port as is; otherwise ``https://<hostname>/.well-known/matrix/server``
may delegate to another ``host[:port]`` (then: IP literal, explicit port, or
port 8448 of the delegated host); without it, port 8448 of the hostname.
SRV records are optional in the spec and not used.  The ``Host`` header and
the certificate name follow the spec (the server name, or the delegated
name).  Configured overrides (``[federation] overrides``) skip all of that:
the connection goes to the given address, while the Host header and the
certificate name stay the server name's, so TLS is still verified.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from common.identifiers import is_valid_server_name
from homeserver.services.clock import Clock

logger = logging.getLogger(__name__)

DEFAULT_PORT = 8448
WELL_KNOWN_TTL_MS = 24 * 3600 * 1000
WELL_KNOWN_FAILURE_TTL_MS = 10 * 60 * 1000

# hostname -> the "m.server" value of its well-known document, or None.
WellKnownFetch = Callable[[str], Awaitable[str | None]]


@dataclass(frozen=True)
class Route:
    """How to send a request to one server."""

    scheme: str  # "https" ("http" only for dev-mode overrides)
    connect_host: str  # what to connect to (hostname or IP literal, IPv6 without brackets)
    port: int
    host_header: str  # the Host header
    tls_name: str  # the name the certificate must carry (SNI)

    @property
    def base_url(self) -> str:
        host = f"[{self.connect_host}]" if ":" in self.connect_host else self.connect_host
        return f"{self.scheme}://{host}:{self.port}"


def split_host_port(name: str) -> tuple[str, int | None]:
    """``host``, ``host:port``, ``[v6]``, ``[v6]:port`` -> (host without brackets, port)."""
    if name.startswith("["):
        host, _, rest = name[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
        return host, int(port) if port.isdigit() else None
    host, sep, port = name.rpartition(":")
    if sep and port.isdigit() and ":" not in host:
        return host, int(port)
    return name, None


def is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class Resolver:
    def __init__(self, overrides: dict[str, str], fetch_well_known: WellKnownFetch, clock: Clock) -> None:
        self.overrides = overrides
        self.fetch_well_known = fetch_well_known
        self.clock = clock
        self._well_known: dict[str, tuple[str | None, int]] = {}

    async def resolve(self, server_name: str) -> Route:
        host, port = split_host_port(server_name)
        override = self.overrides.get(server_name.lower())
        if override is not None:
            scheme = "http" if override.startswith("http://") else "https"
            target_host, target_port = split_host_port(override.removeprefix("http://").removeprefix("https://"))
            return Route(scheme, target_host, target_port or DEFAULT_PORT, server_name, host)
        if is_ip_literal(host) or port is not None:
            return Route("https", host, port or DEFAULT_PORT, server_name, host)
        delegated = await self._delegation(host)
        if delegated is not None:
            d_host, d_port = split_host_port(delegated)
            return Route("https", d_host, d_port or DEFAULT_PORT, delegated, d_host)
        return Route("https", host, DEFAULT_PORT, server_name, host)

    async def _delegation(self, host: str) -> str | None:
        now = self.clock.now_ms()
        cached = self._well_known.get(host)
        if cached is not None and cached[1] > now:
            return cached[0]
        try:
            value = await self.fetch_well_known(host)
        except Exception as exc:  # any failure means "no delegation" (spec)
            logger.info("no .well-known/matrix/server for %s: %s", host[:255], exc)
            value = None
        if value is not None and not _valid_delegation(value):
            logger.info(".well-known/matrix/server of %s names an invalid server %r", host[:255], value[:100])
            value = None
        ttl = WELL_KNOWN_TTL_MS if value is not None else WELL_KNOWN_FAILURE_TTL_MS
        self._well_known[host] = (value, now + ttl)
        return value


def _valid_delegation(value: str) -> bool:
    return is_valid_server_name(value)

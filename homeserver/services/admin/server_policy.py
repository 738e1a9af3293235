"""Which servers may take part: the server-wide deny list and rooms' ``m.room.server_acl``.

``[admin] server_deny_list`` (comma-separated, ``*`` and ``?`` wildcards) names
servers refused everywhere.  A room's ``m.room.server_acl`` is evaluated as
the spec says: the port is ignored; an IP literal is refused unless
``allow_ip_literals`` (default true); a ``deny`` match refuses; an ``allow``
match admits; anything else is refused.  Matching ignores case; entries that
are not strings are ignored.

``[federation] allow_list`` (same syntax), when set, refuses every server it
does not name.  Federation calls :meth:`ServerPolicy.check` for the origin of
every request (homeserver/federation/request_auth.py) and
:meth:`ServerPolicy.denied_everywhere` before every outgoing one.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from typing import Any

from common.errors import forbidden
from homeserver.storage.events import EventRepository


def glob_regex(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE)


def _host(server_name: str) -> str:
    if server_name.startswith("["):  # [IPv6]:port
        return server_name[1:].split("]", 1)[0]
    host, _, port = server_name.rpartition(":")
    return host if host and port.isdigit() else server_name


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _patterns(entries: Any) -> list[re.Pattern[str]]:
    if not isinstance(entries, list):
        return []
    return [glob_regex(e) for e in entries if isinstance(e, str)]


def acl_allows(content: dict[str, Any], server_name: str) -> bool:
    """Whether an ``m.room.server_acl`` content admits ``server_name``."""
    host = _host(server_name)
    if content.get("allow_ip_literals", True) is False and _is_ip_literal(host):
        return False
    if any(p.fullmatch(host) for p in _patterns(content.get("deny"))):
        return False
    return any(p.fullmatch(host) for p in _patterns(content.get("allow")))


def parse_deny_list(value: str) -> list[str]:
    return [entry.strip() for entry in value.split(",") if entry.strip()]


class ServerPolicy:
    def __init__(self, deny_list: Iterable[str], events: EventRepository, allow_list: Iterable[str] = ()) -> None:
        self.denied = [glob_regex(entry) for entry in deny_list]
        # ``[federation] allow_list``: when set, only these servers may take part.
        self.only = [glob_regex(entry) for entry in allow_list]
        self.events = events

    def denied_everywhere(self, server_name: str) -> bool:
        host = _host(server_name)
        if self.only and not any(p.fullmatch(host) for p in self.only):
            return True
        return any(p.fullmatch(host) for p in self.denied)

    async def allowed(self, server_name: str, room_id: str | None = None) -> bool:
        if self.denied_everywhere(server_name):
            return False
        if room_id is None:
            return True
        acl = await self.events.state_event(room_id, "m.room.server_acl", "")
        return acl is None or acl_allows(acl.content, server_name)

    async def check(self, server_name: str, room_id: str | None = None) -> None:
        """Raise 403 ``M_FORBIDDEN`` when ``server_name`` may not take part (in ``room_id``)."""
        if not await self.allowed(server_name, room_id):
            raise forbidden(f"Server {server_name[:255]} is not allowed here")

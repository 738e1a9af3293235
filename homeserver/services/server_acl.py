"""``m.room.server_acl``: which servers may take part in a room (server-server API, "Server ACLs").

A server name is matched without its port; ``deny`` wins over ``allow``; an
IP literal is refused unless ``allow_ip_literals`` (default true) says
otherwise; an ACL whose ``allow`` is absent allows nobody.  Globs know ``*``
and ``?`` only.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from common.errors import Codes, MatrixError

ACL = ("m.room.server_acl", "")


def _glob(pattern: str) -> re.Pattern[str]:
    parts = (".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile("".join(parts) + r"\Z", re.IGNORECASE | re.DOTALL)


def host_of(server_name: str) -> str:
    """The server name without its port (an IPv6 literal keeps its brackets)."""
    if server_name.startswith("["):
        return server_name[: server_name.find("]") + 1] if "]" in server_name else server_name
    return server_name.rsplit(":", 1)[0] if server_name.count(":") == 1 else server_name


def _is_ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def server_allowed(server_name: str, content: dict[str, Any] | None) -> bool:
    if not content:
        return True
    host = host_of(server_name)
    if content.get("allow_ip_literals", True) is False and _is_ip_literal(host):
        return False
    deny = content.get("deny")
    allow = content.get("allow")
    deny = deny if isinstance(deny, list) else []
    allow = allow if isinstance(allow, list) else []
    if any(isinstance(p, str) and _glob(p).match(host) for p in deny):
        return False
    return any(isinstance(p, str) and _glob(p).match(host) for p in allow)


def check_server_allowed(server_name: str, content: dict[str, Any] | None) -> None:
    if not server_allowed(server_name, content):
        raise MatrixError(403, Codes.FORBIDDEN, f"Server {server_name[:100]} is banned from this room (server ACL)")

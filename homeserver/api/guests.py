"""What a guest's access token may call (client-server API, "Guest Access": the
endpoints guests may use).  Everything else answers 403 M_GUEST_ACCESS_FORBIDDEN."""

from __future__ import annotations

import re

_P = r"/_matrix/client/(?:v3|r0)"
_ALLOWED = [
    ("GET", r"/rooms/[^/]+/(state|state/.+|context/[^/]+|event/[^/]+|messages|members|joined_members|initialSync)"),
    ("GET", r"/(sync|events|initialSync|account/whoami|voip/turnServer|pushrules/.*|capabilities)"),
    ("GET", r"/profile/[^/]+(/[^/]+)?"),
    ("PUT", r"/profile/[^/]+/displayname"),
    ("GET|PUT", r"/presence/[^/]+/status"),
    ("POST", r"/(join/[^/]+|rooms/[^/]+/join|rooms/[^/]+/leave|rooms/[^/]+/read_markers|logout)"),
    ("POST", r"/rooms/[^/]+/receipt/[^/]+/[^/]+"),
    ("PUT", r"/rooms/[^/]+/send/m\.room\.message/[^/]+"),
    ("PUT", r"/rooms/[^/]+/typing/[^/]+"),
    ("PUT", r"/sendToDevice/[^/]+/[^/]+"),
    ("GET", r"/devices(/[^/]+)?"),
    ("PUT|DELETE", r"/devices/[^/]+"),
    ("POST", r"/(keys/query|keys/upload|keys/claim|user/[^/]+/filter)"),
    ("GET", r"/(keys/changes|user/[^/]+/filter/[^/]+)"),
]
_COMPILED = [(set(methods.split("|")), re.compile(f"^{_P}{path}$")) for methods, path in _ALLOWED]


def guest_may_call(method: str, path: str) -> bool:
    return any(method in methods and pattern.match(path) for methods, pattern in _COMPILED)

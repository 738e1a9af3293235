"""Hostile requests for every route of the route table (the sweep in test_hostile_sweep.py).

The plan is derived from ``homeserver.api.routes.all_routes()``: a route
added later is swept without editing anything here.  Each (path, method)
gets a representative set of attacks, not a cartesian product:

* path values: each hostile value in every parameter at once, and each
  parameter alone with one hostile value (the rest valid);
* bodies (PUT/POST/DELETE): values canonical JSON cannot carry, bodies that
  are not JSON or not objects, and a "kitchen sink" object whose fields
  (named like the fields handlers read) hold wrong types;
* query strings: huge, negative, non-numeric and malformed values for the
  parameters handlers read;
* tokens: missing, unknown, malformed, oversized.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from starlette.routing import Route

from homeserver.api.routes import all_routes

# Raw JSON fragments that json.dumps cannot produce.
HOSTILE_LEAVES: dict[str, str] = {
    "lone_surrogate": '"\\ud800"',
    "lone_low_surrogate": '"x\\udfff"',
    "huge_float": "1e400",
    "float": "1.5",
    "int_2_53": "9007199254740992",
    "int_2_63": "9223372036854775808",
    "negative_huge": "-99999999999999999999999",
    "nan": "NaN",
    "infinity": "-Infinity",
    "deep": "[" * 700 + "]" * 700,
    "deep_objects": '{"a":' * 500 + "1" + "}" * 500,
    "nul_string": '"a\\u0000b"',
    "newline_string": '"x\\n"',
    "long_string": json.dumps("x" * 20000),
    "empty_object": "{}",
    "list": '[1, "a", null, {}]',
    "null": "null",
    "bool": "true",
    "negative": "-1",
}

# Field names that handlers read, so wrong types reach past the first check.
SINK_FIELDS = (
    "body", "msgtype", "user_id", "displayname", "avatar_url", "presence", "status_msg",
    "messages", "one_time_keys", "device_keys", "fallback_keys", "auth", "username",
    "password", "identifier", "type", "reason", "name", "topic", "invite", "preset",
    "visibility", "room_version", "initial_state", "creation_content", "is_direct",
    "power_level_content_override", "timeout", "typing", "order", "tags", "devices",
    "algorithm", "auth_data", "version", "rooms", "sessions", "session_data",
    "first_message_index", "forwarded_count", "is_verified", "m.fully_read", "m.read",
    "m.read.private", "thread_id", "email", "client_secret", "send_attempt", "sid", "token",
    "code", "pairing_id", "payload", "search_term", "limit", "filter", "membership",
    "content", "state_key", "event_id", "device_id", "initial_device_display_name",
    "refresh_token", "inhibit_login", "login_key", "signature", "nonce", "value",
    "room", "event_fields", "account_data", "state", "timeline", "mimetype", "url", "info",
)

HOSTILE_PATH_VALUES = (
    "%00", "%ED%A0%80", "%FF%FE", "..%2F..%2Fetc%2Fpasswd", "a%0Ab", "%40x%0A%3Ahs",
    "9223372036854775808", "-1", "x" * 3000, "%F0%9F%98%80", "%25", "!%20%3A",
)

HOSTILE_QUERIES: tuple[dict[str, str], ...] = (
    {"since": "p9223372036854775808_1", "from": "t9223372036854775808", "limit": "9223372036854775808"},
    {"since": "p1_99999999999999999999", "from": "p9223372036854775807", "to": "t99999999999999999999"},
    {"since": "-1", "from": "-5", "to": "-7", "limit": "-1", "timeout": "-1"},
    {"since": "abc", "from": "x_y_z", "limit": "ten", "timeout": "1e400", "dir": "sideways"},
    {"filter": "[" * 700, "full_state": "maybe", "set_presence": "%00"},
    {"filter": '{"room":{"timeline":{"limit":1e400}}}', "width": "1e400", "height": "-1"},
    {"filter": '{"a":"\\ud800"}', "method": "explode", "animated": "2"},
    {"since": "p" + "9" * 40, "limit": "0", "timeout": "99999999999999999999", "width": "99999999"},
    {"from": "%ED%A0%80", "user_id": "@%0A:x", "via": "%00", "allow_remote": "yes"},
)

HOSTILE_TOKENS: tuple[dict[str, str] | None, ...] = (
    None,
    {"Authorization": "Bearer unknown_token_value"},
    {"Authorization": "Bearer"},
    {"Authorization": "Basic dXNlcjpwYXNz"},
    {"Authorization": "Bearer " + "t" * 8000},
)


@dataclass(frozen=True)
class Probe:
    """One hostile request: what it attacks (for the failure message) and how to send it."""

    route: str
    label: str
    method: str
    path: str
    params: dict[str, str] | None = None
    content: bytes | None = None
    headers: dict[str, str] | None = None
    authenticated: bool = True


@dataclass
class SweepTargets:
    """Valid path values (rooms, events, users, devices) the sweep builds on."""

    values: dict[str, str] = field(default_factory=dict)

    def value(self, name: str) -> str:
        return self.values.get(name, "x")


_PARAM = re.compile(r"{([^}:]+)(?::[^}]+)?}")


def routes() -> list[tuple[str, str]]:
    """Distinct (path template, method) pairs of the route table.

    r0 aliases share the v3 handler; one of each (endpoint, method) is swept.
    """
    seen: set[tuple[object, str]] = set()
    out: list[tuple[str, str]] = []
    for route in all_routes():
        if not isinstance(route, Route):
            continue
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            key = (route.endpoint, method)
            if key in seen:
                continue
            seen.add(key)
            out.append((route.path, method))
    return out


def fill(template: str, values: dict[str, str]) -> str:
    return _PARAM.sub(lambda m: values[m.group(1)], template)


def _params(template: str) -> list[str]:
    return _PARAM.findall(template)


def _body(template: Any) -> bytes:
    return json.dumps(template).encode()


def _with_leaf(leaf: str, victim: str) -> bytes:
    """A kitchen-sink body with ``leaf`` (raw JSON) in every field, plus a to-device map for the victim."""
    sink = {name: "__LEAF__" for name in SINK_FIELDS}
    sink["messages"] = {victim: {"*": {"x": "__LEAF__"}}}
    sink["one_time_keys"] = {"signed_curve25519:AAAA": "__LEAF__"}
    sink["auth"] = {"type": "m.login.dummy", "session": "__LEAF__"}
    sink["identifier"] = {"type": "m.id.user", "user": "__LEAF__"}
    sink["rooms"] = {"!r:x": {"sessions": {"s": {"session_data": "__LEAF__"}}}}
    return json.dumps(sink).replace('"__LEAF__"', leaf).encode()


def body_probes(route: str, method: str, path: str, victim: str) -> Iterator[Probe]:
    if method not in ("PUT", "POST", "DELETE"):
        return
    raw_bodies: dict[str, bytes] = {
        "not_json": b"{not json",
        "not_utf8": b'{"a":"\xff\xfe"}',
        "array": b"[1,2,3]",
        "string": b'"hello"',
        "truncated": b'{"a":',
        "deep_array": b"[" * 900 + b"]" * 900,
        "deep_body": b'{"a":' * 900 + b"1" + b"}" * 900,
    }
    for label, content in raw_bodies.items():
        yield Probe(route, f"body:{label}", method, path, content=content)
    for label, leaf in HOSTILE_LEAVES.items():
        yield Probe(route, f"sink:{label}", method, path, content=_with_leaf(leaf, victim))
        # The same leaf alone as the whole content of a field-less body (e.g. send's content).
        yield Probe(route, f"leaf:{label}", method, path, content=('{"x":' + leaf + "}").encode())


def plan(targets: SweepTargets, victim: str) -> list[Probe]:
    """Every probe for every route, in route-table order."""
    probes: list[Probe] = []
    for template, method in routes():
        route = f"{method} {template}"
        names = _params(template)
        valid = {n: targets.value(n) for n in names}
        good_path = fill(template, valid)
        for i, hostile in enumerate(HOSTILE_PATH_VALUES):
            if names:
                bad_all = fill(template, dict.fromkeys(names, hostile))
                probes.append(Probe(route, f"path-all:{hostile[:20]}", method, bad_all))
            if i < len(names):
                one = dict(valid)
                one[names[i]] = HOSTILE_PATH_VALUES[(i * 5 + 1) % len(HOSTILE_PATH_VALUES)]
                probes.append(Probe(route, f"path-one:{names[i]}", method, fill(template, one)))
        probes.extend(body_probes(route, method, good_path, victim))
        for n, query in enumerate(HOSTILE_QUERIES):
            probes.append(Probe(route, f"query:{n}", method, good_path, params=query))
        for n, headers in enumerate(HOSTILE_TOKENS):
            probes.append(Probe(route, f"token:{n}", method, good_path, headers=headers or {},
                                authenticated=False))
        # A valid token in the query string alongside a hostile one in the header.
        probes.append(Probe(route, "token:both", method, good_path, params={"access_token": "%00"}))
    return probes


def encode_path(path: str, params: dict[str, str] | None = None) -> str:
    """The request target: %-escapes in hostile values are kept as they are (so
    they can carry bytes that are not UTF-8); everything else is escaped."""
    target = quote(path, safe="/%!@:$&'()*+,;=-._~")
    if params:
        target += "?" + "&".join(f"{k}={quote(v, safe='%')}" for k, v in params.items())
    return target

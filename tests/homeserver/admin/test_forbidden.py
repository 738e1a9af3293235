"""Every admin endpoint answers 403 M_FORBIDDEN to a non-admin and 401 without a token."""

from __future__ import annotations

from tests.homeserver.admin.helpers import A1, A2
from tests.support.server import Account, RunningServer

U = "@someone:example.test"
R = "!room:example.test"

ADMIN_ENDPOINTS = [
    ("GET", A2 + "/users"),
    ("GET", f"{A2}/users/{U}"),
    ("PUT", f"{A2}/users/{U}"),
    ("POST", f"{A1}/deactivate/{U}"),
    ("POST", f"{A1}/reset_password/{U}"),
    ("POST", f"{A1}/users/{U}/login"),
    ("GET", f"{A1}/users/{U}/admin"),
    ("PUT", f"{A1}/users/{U}/admin"),
    ("POST", f"{A1}/users/{U}/shadow_ban"),
    ("DELETE", f"{A1}/users/{U}/shadow_ban"),
    ("PUT", f"{A1}/suspend/{U}"),
    ("GET", f"{A1}/users/{U}/joined_rooms"),
    ("GET", f"{A1}/users/{U}/accountdata"),
    ("GET", f"{A1}/users/{U}/pushers"),
    ("GET", f"{A2}/users/{U}/devices"),
    ("GET", f"{A2}/users/{U}/devices/DEV"),
    ("PUT", f"{A2}/users/{U}/devices/DEV"),
    ("DELETE", f"{A2}/users/{U}/devices/DEV"),
    ("POST", f"{A2}/users/{U}/delete_devices"),
    ("GET", f"{A1}/users/{U}/override_ratelimit"),
    ("POST", f"{A1}/users/{U}/override_ratelimit"),
    ("DELETE", f"{A1}/users/{U}/override_ratelimit"),
    ("GET", f"{A1}/whois/{U}"),
    ("GET", f"/_matrix/client/v3/admin/whois/{U}"),
    ("GET", A1 + "/username_available?username=x"),
    ("GET", A1 + "/rooms"),
    ("GET", f"{A1}/rooms/{R}"),
    ("DELETE", f"{A1}/rooms/{R}"),
    ("GET", f"{A1}/rooms/{R}/members"),
    ("GET", f"{A1}/rooms/{R}/state"),
    ("GET", f"{A1}/rooms/{R}/messages"),
    ("GET", f"{A1}/rooms/{R}/block"),
    ("PUT", f"{A1}/rooms/{R}/block"),
    ("POST", A1 + "/send_server_notice"),
    ("DELETE", f"{A2}/rooms/{R}"),
    ("GET", f"{A2}/rooms/{R}/delete_status"),
    ("GET", A2 + "/rooms/delete_status/abc"),
    ("POST", f"{A1}/join/{R}"),
    ("POST", f"{A1}/rooms/{R}/make_room_admin"),
    ("GET", A1 + "/statistics/users/media"),
    ("POST", f"{A1}/purge_history/{R}"),
    ("POST", f"{A1}/purge_history/{R}/$event"),
    ("GET", A1 + "/purge_history_status/abc"),
    ("DELETE", f"{A1}/users/{U}/media"),
    ("GET", f"{A1}/users/{U}/media"),
    ("POST", f"{A1}/user/{U}/media/quarantine"),
    ("POST", A1 + "/media/quarantine/example.test/abcd"),
    ("POST", A1 + "/media/unquarantine/example.test/abcd"),
    ("POST", A1 + "/media/delete?before_ts=1"),
    ("DELETE", A1 + "/media/example.test/abcd"),
    ("GET", A1 + "/event_reports"),
    ("GET", A1 + "/event_reports/1"),
    ("DELETE", A1 + "/event_reports/1"),
    ("GET", A1 + "/registration_tokens"),
    ("POST", A1 + "/registration_tokens/new"),
    ("GET", A1 + "/registration_tokens/abc"),
    ("PUT", A1 + "/registration_tokens/abc"),
    ("DELETE", A1 + "/registration_tokens/abc"),
]


async def test_non_admin_gets_403_on_every_admin_endpoint(server: RunningServer, admin: Account) -> None:
    alice = await server.register("alice")
    wrong = []
    for method, path in ADMIN_ENDPOINTS:
        body = None if method in ("GET", "DELETE") else {}
        as_user = await server.api(method, path, alice, json=body)
        anonymous = await server.api(method, path, json=body)
        if (as_user.status_code, as_user.json().get("errcode")) != (403, "M_FORBIDDEN") or (
            anonymous.status_code, anonymous.json().get("errcode")) != (401, "M_MISSING_TOKEN"):
            wrong.append((method, path, as_user.status_code, anonymous.status_code))
    assert wrong == []
    # The same requests get past the check for an admin (whatever they then answer).
    for method, path in ADMIN_ENDPOINTS:
        body = None if method in ("GET", "DELETE") else {}
        response = await server.api(method, path, admin, json=body)
        assert response.json().get("errcode") != "M_FORBIDDEN" or "admin" not in response.json()["error"], path


def test_every_admin_route_is_covered() -> None:
    from homeserver.api.admin.routes import admin_routes

    public = {"/_synapse/admin/v1/register", "/_synapse/admin/v1/server_version",
              "/_matrix/client/r0/admin/whois/{user_id}"}
    covered = {_template(p) for _, p in ADMIN_ENDPOINTS}
    admin_paths = {r.path for r in admin_routes() if r.path.startswith("/_synapse/")  # type: ignore[attr-defined]
                   or "/admin/" in r.path}  # type: ignore[attr-defined]
    assert admin_paths - public - covered == set()


def _template(path: str) -> str:
    import re

    path = path.split("?")[0]
    path = path.replace(U, "{user_id}").replace(R, "{room_id}")
    path = re.sub(r"/media/(un)?quarantine/example.test/abcd", r"/media/\1quarantine/{server_name}/{media_id}", path)
    path = path.replace("/media/example.test/abcd", "/media/{server_name}/{media_id}")
    path = re.sub(r"/devices/DEV$", "/devices/{device_id}", path)
    path = re.sub(r"/event_reports/1$", "/event_reports/{report_id}", path)
    path = re.sub(r"/registration_tokens/abc$", "/registration_tokens/{token}", path)
    path = re.sub(r"/delete_status/abc$", "/delete_status/{delete_id}", path)
    path = re.sub(r"/purge_history_status/abc$", "/purge_history_status/{purge_id}", path)
    path = path.replace("/$event", "/{event_id}")
    return path

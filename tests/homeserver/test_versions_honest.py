"""``/versions`` claims only spec versions whose every endpoint is served, and the small
endpoints that completing v1.1 and later needed (third-party lookups, ``/events/{eventId}``,
``/refresh``, ``/.well-known/matrix/support``, the deprecated ``POST /account/3pid``, the
e-mail verification link), over real HTTP."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.routing import Route

from homeserver.api.routes import all_routes
from homeserver.api.spec_versions import ADDED, OPTIONAL, V1_1, missing_endpoints, supported_versions
from homeserver.config import Config, ConfigError
from tests.homeserver.room_helpers import create_room, expect_error, send_text
from tests.homeserver.test_accounts import _email
from tests.support.server import RunningServer, serve_homeserver
from tests.support.smtp import SmtpSink


async def test_versions_lists_exactly_the_fully_served_versions(server: RunningServer) -> None:
    body = (await server.api("GET", "/_matrix/client/versions")).json()
    claimed = body["versions"]
    assert body["unstable_features"] == {"im.parley": True}
    assert "v1.1" in claimed and "r0.6.1" in claimed
    routes = all_routes()
    assert claimed == supported_versions(routes)
    # Every claimed version is complete; the first one not claimed is not.
    for version in [v for v in claimed if v.startswith("v")]:
        assert missing_endpoints(routes, version) == [], version
    unclaimed = [v for v in ADDED if v not in claimed]
    if unclaimed:
        assert missing_endpoints(routes, unclaimed[0])
    # Optional endpoints are never required.
    required = {*V1_1, *(e for added in ADDED.values() for e in added)}
    assert not required & set(OPTIONAL)


def test_a_missing_route_withdraws_its_version_and_every_later_one() -> None:
    routes = all_routes()
    claimed = supported_versions(routes)

    def without(path: str) -> list[Any]:
        return [r for r in routes if not (isinstance(r, Route) and r.path == path)]

    assert supported_versions(without("/_matrix/client/v3/search")) == []
    if "v1.11" in claimed:
        assert "v1.11" not in supported_versions(without("/_matrix/client/v1/media/config"))
    if "v1.3" in claimed:
        assert supported_versions(without("/_matrix/client/v3/refresh"))[-1] == "v1.2"
    # A route that only matches another method does not count.
    get_only = [r for r in routes if not (isinstance(r, Route) and r.path == "/_matrix/client/v3/search")]
    get_only.append(Route("/_matrix/client/v3/search", lambda request: None, methods=["GET"]))
    assert supported_versions(get_only) == []


async def test_every_claimed_endpoint_answers_over_http(server: RunningServer) -> None:
    """Each endpoint of every claimed version reaches a handler (any answer but the router's
    404 M_UNRECOGNIZED / 405), with the caller's ids in the path."""
    alice = await server.register()
    room_id = await create_room(server, alice)
    claimed = (await server.api("GET", "/_matrix/client/versions")).json()["versions"]
    endpoints = list(V1_1) + [e for v in ADDED if v in claimed for e in ADDED[v]]
    values = {"userId": alice.user_id, "roomId": room_id, "serverName": server.config.server_name}
    last = {"/_matrix/client/v3/logout", "/_matrix/client/v3/logout/all"}
    endpoints.sort(key=lambda e: e[1] in last)
    for method, path in endpoints:
        concrete = re.sub(r"\{([^}]+)\}", lambda m: values.get(m.group(1), "x"), path)
        kwargs: dict[str, Any] = {"json": {}} if method in ("POST", "PUT") else {}
        response = await server.api(method, concrete, alice, **kwargs)
        unrouted = response.status_code == 405 or (
            response.status_code == 404 and response.json().get("errcode") == "M_UNRECOGNIZED")
        assert not unrouted, (method, path, response.text)


async def test_third_party_lookups_know_no_protocols(server: RunningServer) -> None:
    alice = await server.register()
    assert (await server.api("GET", "thirdparty/protocols", alice)).json() == {}
    for path in ("thirdparty/protocol/irc", "thirdparty/location/irc", "thirdparty/user/irc"):
        await expect_error(await server.api("GET", path, alice), 404, "M_NOT_FOUND")
    for path, name in (("thirdparty/location", "alias"), ("thirdparty/user", "userid")):
        answer = await server.api("GET", path, alice, params={name: "#a:example.org"})
        assert answer.status_code == 200 and answer.json() == []
        await expect_error(await server.api("GET", path, alice), 400, "M_MISSING_PARAM")
        await expect_error(await server.api("GET", path, params={name: "x"}), 401, "M_MISSING_TOKEN")


async def test_event_by_id_only_where_visible(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice)
    event_id = await send_text(server, alice, room, "hello")
    mine = await server.api("GET", f"events/{event_id}", alice)
    assert mine.status_code == 200, mine.text
    got, in_room = mine.json(), (await server.api("GET", f"rooms/{room}/event/{event_id}", alice)).json()
    for event in (got, in_room):
        event["unsigned"].pop("age")  # milliseconds since it was sent: differs between the two reads
    assert got["event_id"] == event_id and got == in_room
    # Not in the room, unknown, malformed: all the same 404.
    for user, target in ((bob, event_id), (alice, "$nosuchevent"), (alice, "not-an-id")):
        await expect_error(await server.api("GET", f"events/{target}", user), 404, "M_NOT_FOUND")


async def test_refresh_knows_no_token(server: RunningServer) -> None:
    await expect_error(await server.api("POST", "refresh", json={}), 400, "M_MISSING_PARAM")
    await expect_error(await server.api("POST", "refresh", json={"refresh_token": 5}), 400, "M_INVALID_PARAM")
    await expect_error(await server.api("POST", "refresh", json={"refresh_token": "abc"}), 401, "M_UNKNOWN_TOKEN")
    # Login never hands out a refresh token, even when asked (the spec lets the server decide).
    await server.register(username="refresher", password="long password 1")
    login = await server.api("POST", "login", json={
        "type": "m.login.password", "password": "long password 1", "refresh_token": True,
        "identifier": {"type": "m.id.user", "user": "refresher"}})
    assert login.status_code == 200 and "refresh_token" not in login.json()


async def test_support_document(make_config: Any) -> None:
    async with serve_homeserver(make_config()) as server:
        await expect_error(await server.api("GET", "/.well-known/matrix/support"), 404, "M_NOT_FOUND")
    admin = {"support_email": "admin@example.org", "support_matrix_id": "@admin:example.org",
             "support_page": "https://example.org/help"}
    async with serve_homeserver(make_config(admin=admin)) as server:
        answer = await server.api("GET", "/.well-known/matrix/support")
        assert answer.status_code == 200
        assert answer.json() == {"contacts": [{"email_address": "admin@example.org", "matrix_id": "@admin:example.org",
                                               "role": "m.role.admin"}], "support_page": "https://example.org/help"}
    for bad in ({"support_matrix_id": "admin"}, {"support_email": "nobody"}, {"support_page": "ftp://x"}):
        config = Config()
        with pytest.raises(ConfigError):
            config.replace(admin=config.admin.__class__(**bad)).validate()


async def test_deprecated_account_3pid_points_to_3pid_add(server: RunningServer) -> None:
    """The deprecated identity-server add is refused with the way that works (Parley verifies e-mail itself)."""
    alice = await server.register()
    response = await server.api("POST", "account/3pid", alice, json={
        "three_pid_creds": {"id_server": "id.example.org", "sid": "1", "client_secret": "s"}, "bind": False})
    await expect_error(response, 400, "M_INVALID_PARAM")
    assert "/account/3pid/add" in response.json()["error"]


async def test_verification_mail_link_validates(make_config: Any, smtp_sink: SmtpSink) -> None:
    async with serve_homeserver(make_config(smtp=smtp_sink.smtp_config())) as server:
        email, secret = _email(), "link secret"
        sid = (await server.api("POST", "register/email/requestToken",
                                json={"email": email, "client_secret": secret})).json()["sid"]
        code = await smtp_sink.wait_for_code(email)
        [mail] = smtp_sink.messages_to(email)
        payload = mail.get_payload(decode=True)
        assert isinstance(payload, bytes)
        link = re.search(r"(http\S*)", payload.decode())
        assert link is not None and f"token={code}" in link.group(1)
        target = urlsplit(link.group(1))
        wrong = await server.api("GET", target.path + "?" + target.query.replace(f"token={code}", "token=000000x"))
        await expect_error(wrong, 400, "M_THREEPID_AUTH_FAILED")
        opened = await server.api("GET", target.path + "?" + target.query)
        assert opened.status_code == 200 and "verified" in opened.text
        done = await server.api("POST", "register", json={
            "username": "linked", "password": "long password 1",
            "auth": {"type": "m.login.email.identity", "threepid_creds": {"sid": sid, "client_secret": secret}}})
        assert done.status_code == 200, done.text
        assert done.json()["user_id"] == f"@linked:{server.config.server_name}"

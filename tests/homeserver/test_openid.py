"""OpenID tokens: requested over the client API, checked at the federation userinfo endpoint."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from homeserver.services.clock import ManualClock
from tests.support.server import serve_homeserver

USERINFO = "/_matrix/federation/v1/openid/userinfo"


async def test_openid_token_round_trip_and_refusals(make_config: Any) -> None:
    clock = ManualClock()
    async with serve_homeserver(make_config(), clock=clock) as server:
        alice = await server.register()
        bob = await server.register()
        response = await server.api("POST", f"user/{quote(alice.user_id)}/openid/request_token", alice, json={})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["token_type"] == "Bearer"
        assert body["matrix_server_name"] == server.config.server_name
        assert body["expires_in"] == 3600
        info = await server.client.get(USERINFO, params={"access_token": body["access_token"]})
        assert info.status_code == 200 and info.json() == {"sub": alice.user_id}

        other = await server.api("POST", f"user/{quote(alice.user_id)}/openid/request_token", bob, json={})
        assert other.status_code == 403
        token = body["access_token"]
        tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
        for bad in (tampered, alice.access_token, "", "oid_x.y"):
            refused = await server.client.get(USERINFO, params={"access_token": bad})
            assert refused.status_code == 401 and refused.json()["errcode"] == "M_UNKNOWN_TOKEN", bad
        clock.advance(3601 * 1000)
        expired = await server.client.get(USERINFO, params={"access_token": token})
        assert expired.status_code == 401

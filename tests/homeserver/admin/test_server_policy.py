"""Server ACLs (m.room.server_acl, evaluated as the spec says) and the server deny list."""

from __future__ import annotations

from typing import Any

import pytest

from common.errors import MatrixError
from homeserver.config import ConfigError
from homeserver.services.admin.server_policy import acl_allows, parse_deny_list
from tests.homeserver.admin.helpers import expect
from tests.homeserver.room_helpers import create_room
from tests.support.server import serve_homeserver


def test_acl_rules() -> None:
    acl = {"allow": ["*"], "deny": ["evil.example", "*.bad.example"], "allow_ip_literals": False}
    assert acl_allows(acl, "good.example")
    assert acl_allows(acl, "good.example:8448")
    assert not acl_allows(acl, "EVIL.example")
    assert not acl_allows(acl, "evil.example:443")
    assert not acl_allows(acl, "x.bad.example")
    assert acl_allows(acl, "bad.example")
    assert not acl_allows(acl, "1.2.3.4")
    assert not acl_allows(acl, "[2001:db8::1]:8448")
    assert acl_allows({"allow": ["*"]}, "1.2.3.4")  # allow_ip_literals defaults to true
    assert not acl_allows({"deny": []}, "good.example")  # nothing allowed
    assert acl_allows({"allow": ["matrix.?rg", 7]}, "matrix.org")  # non-strings are ignored
    assert not acl_allows({"allow": ["matrix.?rg"]}, "matrix.oorg")


async def test_policy_combines_deny_list_and_room_acl(make_config: Any) -> None:
    config = make_config(admin={"server_deny_list": "spam.example, *.spam.example"})
    async with serve_homeserver(config) as server:
        alice = await server.register("alice")
        room = await create_room(server, alice)
        policy = server.hs.services.admin.servers
        with server.hs.database.activated():
            assert await policy.allowed("friend.example", room)
            assert not await policy.allowed("spam.example")
            assert not await policy.allowed("a.spam.example:8448", room)
        expect(await server.api("PUT", f"rooms/{room}/state/m.room.server_acl", alice,
                                json={"allow": ["*"], "deny": ["friend.example"]}))
        with server.hs.database.activated():
            assert not await policy.allowed("friend.example", room)
            assert await policy.allowed("friend.example")
            assert await policy.allowed("other.example", room)
            with pytest.raises(MatrixError) as refused:
                await policy.check("friend.example", room)
        assert refused.value.status == 403 and refused.value.errcode == "M_FORBIDDEN"


def test_deny_list_setting_is_validated(make_config: Any) -> None:
    assert parse_deny_list(" a.example, ,*.b.example ") == ["a.example", "*.b.example"]
    with pytest.raises(ConfigError):
        make_config(admin={"server_deny_list": "bad/entry"})

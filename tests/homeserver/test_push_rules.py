"""Push rules over HTTP: the spec's default set, the user's own rules, ordering, enabling, actions."""

from __future__ import annotations

from urllib.parse import quote

from tests.support.server import RunningServer

NOTICE = [{"kind": "event_match", "key": "content.msgtype", "pattern": "m.notice"}]


def _ids(rules: list[dict[str, object]]) -> list[object]:
    return [r["rule_id"] for r in rules]


async def test_default_rule_set(server: RunningServer) -> None:
    alice = await server.register()
    response = await server.api("GET", "pushrules/", alice)
    assert response.status_code == 200
    rules = response.json()["global"]
    assert set(rules) == {"override", "content", "room", "sender", "underride"}
    assert _ids(rules["override"])[:2] == [".m.rule.master", ".m.rule.suppress_notices"]
    assert ".m.rule.is_user_mention" in _ids(rules["override"])
    assert _ids(rules["underride"]) == [
        ".m.rule.call", ".m.rule.encrypted_room_one_to_one", ".m.rule.room_one_to_one",
        ".m.rule.message", ".m.rule.encrypted"]
    master = rules["override"][0]
    assert master == {"rule_id": ".m.rule.master", "default": True, "enabled": False,
                      "conditions": [], "actions": []}
    invite = next(r for r in rules["override"] if r["rule_id"] == ".m.rule.invite_for_me")
    assert {"kind": "event_match", "key": "state_key", "pattern": alice.user_id} in invite["conditions"]
    user_name = rules["content"][0]
    assert user_name["rule_id"] == ".m.rule.contains_user_name"
    assert user_name["pattern"] == alice.user_id[1:].split(":")[0]
    assert rules["room"] == rules["sender"] == []
    # The per-scope and per-kind listings say the same.
    assert (await server.api("GET", "pushrules/global/", alice)).json() == rules
    assert (await server.api("GET", "pushrules/global/underride/", alice)).json() == rules["underride"]
    one = await server.api("GET", "pushrules/global/override/.m.rule.master", alice)
    assert one.json() == master
    # Another user's defaults name that user.
    bob = await server.register()
    bob_rules = (await server.api("GET", "pushrules/", bob)).json()["global"]
    assert bob_rules["content"][0]["pattern"] == bob.user_id[1:].split(":")[0]


async def test_add_rules_of_every_kind(server: RunningServer) -> None:
    alice = await server.register()
    cases = [
        ("room", "!spam:example.com", {}),
        ("sender", "@bob:example.com", {}),
        ("content", "my_content_rule", {"pattern": "my_pattern"}),
        ("content", "тест", {"pattern": "тест"}),
        ("override", "my_override_rule", {"conditions": NOTICE}),
        ("underride", "my_underride_rule", {"conditions": NOTICE}),
    ]
    for kind, rule_id, extra in cases:
        path = f"pushrules/global/{kind}/{quote(rule_id)}"
        put = await server.api("PUT", path, alice, json={"actions": ["notify"], **extra})
        assert put.status_code == 200, (kind, put.text)
        got = (await server.api("GET", path, alice)).json()
        assert got["rule_id"] == rule_id and got["default"] is False and got["enabled"] is True
        assert got["actions"] == ["notify"]
        assert (await server.api("GET", path + "/enabled", alice)).json() == {"enabled": True}
        assert (await server.api("GET", path + "/actions", alice)).json() == {"actions": ["notify"]}
        assert rule_id in _ids((await server.api("GET", f"pushrules/global/{kind}/", alice)).json())
    rules = (await server.api("GET", "pushrules/", alice)).json()["global"]
    # User override rules come after .m.rule.master but before the other defaults;
    # user underride and content rules before the defaults of their kind.
    assert _ids(rules["override"])[:2] == [".m.rule.master", "my_override_rule"]
    assert _ids(rules["underride"])[0] == "my_underride_rule"
    assert _ids(rules["content"])[:2] == ["тест", "my_content_rule"]
    # They reach clients through /sync as m.push_rules account data.
    sync = (await server.api("GET", "sync", alice)).json()
    events = {e["type"]: e["content"] for e in sync["account_data"]["events"]}
    assert _ids(events["m.push_rules"]["global"]["room"]) == ["!spam:example.com"]


async def test_ordering_before_after_and_idempotent_put(server: RunningServer) -> None:
    alice = await server.register()

    async def put(rule_id: str, **params: str) -> int:
        response = await server.api("PUT", f"pushrules/global/room/{quote(rule_id)}", alice,
                                    json={"actions": ["notify"]}, params=params)
        return response.status_code

    async def order() -> list[object]:
        return _ids((await server.api("GET", "pushrules/global/room/", alice)).json())

    assert await put("!a:x") == 200
    assert await put("!b:x") == 200
    assert await order() == ["!b:x", "!a:x"]  # new rules first
    assert await put("!c:x", before="!a:x") == 200
    assert await order() == ["!b:x", "!c:x", "!a:x"]
    assert await put("!d:x", after="!a:x") == 200
    assert await order() == ["!b:x", "!c:x", "!a:x", "!d:x"]
    assert await put("!c:x") == 200  # the same rule again changes nothing
    assert await order() == ["!b:x", "!c:x", "!a:x", "!d:x"]
    assert await put("!e:x", before="!nope:x") == 404
    override = await server.api("PUT", "pushrules/global/override/mine", alice,
                                json={"actions": [], "conditions": []}, params={"before": ".m.rule.master"})
    assert override.status_code == 400

    deleted = await server.api("DELETE", f"pushrules/global/room/{quote('!c:x')}", alice)
    assert deleted.status_code == 200
    assert await order() == ["!b:x", "!a:x", "!d:x"]
    gone = await server.api("DELETE", f"pushrules/global/room/{quote('!c:x')}", alice)
    assert gone.status_code == 404 and gone.json()["errcode"] == "M_NOT_FOUND"


async def test_enable_and_actions_of_default_and_own_rules(server: RunningServer) -> None:
    alice = await server.register()
    base = "pushrules/global/override/.m.rule.suppress_notices"
    assert (await server.api("PUT", base + "/enabled", alice, json={"enabled": False})).status_code == 200
    assert (await server.api("GET", base + "/enabled", alice)).json() == {"enabled": False}
    assert (await server.api("PUT", base + "/actions", alice, json={"actions": ["notify"]})).status_code == 200
    rule = (await server.api("GET", base, alice)).json()
    assert rule["enabled"] is False and rule["actions"] == ["notify"] and rule["default"] is True

    for attribute, body in (("enabled", {"enabled": True}), ("actions", {"actions": ["notify"]})):
        missing = await server.api("PUT", f"pushrules/global/override/.m.rule.nonexistent/{attribute}",
                                   alice, json=body)
        assert missing.status_code == 404, attribute
        missing = await server.api("PUT", f"pushrules/global/room/{quote('!no:x')}/{attribute}", alice, json=body)
        assert missing.status_code == 404, attribute

    path = "pushrules/global/sender/" + quote("@bob:example.com")
    await server.api("PUT", path, alice, json={"actions": ["notify"]})
    tweak = {"set_tweak": "sound", "value": "default"}
    assert (await server.api("PUT", path + "/actions", alice, json={"actions": ["notify", tweak]})).status_code == 200
    assert (await server.api("GET", path + "/actions", alice)).json() == {"actions": ["notify", tweak]}


async def test_bad_rules_are_refused(server: RunningServer) -> None:
    alice = await server.register()
    cases = [
        ("pushrules/global/content/nopattern", {"actions": ["notify"]}, "M_MISSING_PARAM"),
        ("pushrules/global/room/.m.rule.mine", {"actions": ["notify"]}, "M_INVALID_PARAM"),
        ("pushrules/global/room/r1", {"actions": "notify"}, "M_BAD_JSON"),
        ("pushrules/global/room/r1", {"actions": ["explode"]}, "M_INVALID_PARAM"),
        ("pushrules/global/override/r1", {"actions": [], "conditions": {"kind": "x"}}, "M_BAD_JSON"),
        ("pushrules/global/underride/r1", {"actions": ["notify"]}, "M_MISSING_PARAM"),
        ("pushrules/global/room/r1", {}, "M_BAD_JSON"),
        ("pushrules/global/nokind/r1", {"actions": []}, "M_INVALID_PARAM"),
        ("pushrules/device/room/r1", {"actions": []}, "M_INVALID_PARAM"),
    ]
    for path, body, errcode in cases:
        response = await server.api("PUT", path, alice, json=body)
        assert response.status_code == 400, (path, response.text)
        assert response.json()["errcode"] == errcode, path
    default = await server.api("DELETE", "pushrules/global/override/.m.rule.master", alice)
    assert default.status_code == 400
    assert (await server.api("GET", "pushrules/", None)).status_code == 401
    # Clients may not write the rule set as plain account data.
    direct = await server.api("PUT", f"user/{quote(alice.user_id)}/account_data/m.push_rules", alice, json={})
    assert direct.status_code == 405


async def test_malformed_push_rule_paths(server: RunningServer) -> None:
    """A missing scope, kind or rule id, a missing trailing slash or an unknown attribute is a
    400 (never a redirect: a PUT redirected to the slashed path would write somewhere else);
    /pushrules without its slash is no endpoint (404)."""
    alice = await server.register()
    base = "/_matrix/client/v3/pushrules"
    for method, path in (("PUT", "/"), ("PUT", "/global"), ("PUT", "/global/room"), ("PUT", "/global/room/"),
                         ("DELETE", "/global/room/"), ("GET", "/global"), ("GET", "/global/room"),
                         ("PUT", "/global/override/.m.rule.master/not_an_attr"),
                         ("GET", "/global/override/.m.rule.master/not_an_attr")):
        response = await server.api(method, base + path, alice, json={"enabled": True} if method == "PUT" else None)
        assert response.status_code == 400, (method, path, response.text)
        assert response.json()["errcode"] in ("M_INVALID_PARAM", "M_UNRECOGNIZED"), (method, path)
    response = await server.api("GET", base, alice)
    assert response.status_code == 404 and response.json()["errcode"] == "M_UNRECOGNIZED"
    # The real paths still work, and nothing was written by the refused requests.
    ruleset = (await server.api("GET", base + "/", alice)).json()
    assert {r["rule_id"] for r in ruleset["global"]["room"]} == set()
    master = await server.api("GET", base + "/global/override/.m.rule.master/enabled", alice)
    assert master.status_code == 200 and master.json() == {"enabled": False}
    assert (await server.api("GET", base + "/global/room/")).status_code == 401

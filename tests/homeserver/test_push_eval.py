"""Push rule evaluation: the spec's conditions on plain data, and the counts /sync reports."""

from __future__ import annotations

import json
from urllib.parse import quote

from homeserver.services.push_eval import PushContext, condition_matches, evaluate
from homeserver.services.push_rules import PushRuleService
from tests.homeserver.room_helpers import create_room, sync
from tests.support.server import RunningServer

ALICE = "@alice:example.org"
CTX = PushContext(ALICE, "Alice Liddell", 3, 0, {"room": 50})


def _message(body: str, **content: object) -> dict[str, object]:
    return {"type": "m.room.message", "sender": "@bob:example.org", "room_id": "!r:example.org",
            "content": {"msgtype": "m.text", "body": body, **content}}


def test_conditions() -> None:
    event = _message("Hello there, alice!")
    assert condition_matches({"kind": "event_match", "key": "content.body", "pattern": "ALICE"}, event, CTX)
    assert not condition_matches({"kind": "event_match", "key": "content.body", "pattern": "ali"}, event, CTX)
    assert condition_matches({"kind": "event_match", "key": "type", "pattern": "m.room.*"}, event, CTX)
    assert not condition_matches({"kind": "event_match", "key": "type", "pattern": "m.room"}, event, CTX)
    assert condition_matches({"kind": "room_member_count", "is": ">2"}, event, CTX)
    assert not condition_matches({"kind": "room_member_count", "is": "2"}, event, CTX)
    assert condition_matches({"kind": "contains_display_name"}, _message("hi Alice Liddell"), CTX)
    mention = _message("hey", **{"m.mentions": {"user_ids": [ALICE]}})
    assert condition_matches({"kind": "event_property_contains", "key": "content.m\\.mentions.user_ids",
                              "value": ALICE}, mention, CTX)
    assert not condition_matches({"kind": "event_property_is", "key": "content.msgtype", "value": 1}, event, CTX)
    assert not condition_matches({"kind": "sender_notification_permission", "key": "room"}, event, CTX)
    assert not condition_matches({"kind": "unknown.kind"}, event, CTX)


def test_default_rules() -> None:
    rules = PushRuleService.build(ALICE, None)
    plain = evaluate(rules, _message("lunch?"), CTX)
    assert plain.notify and not plain.highlight
    assert evaluate(rules, _message("hello alice"), CTX).highlight  # .m.rule.contains_user_name
    mention = _message("hey", **{"m.mentions": {"user_ids": [ALICE]}})
    assert evaluate(rules, mention, CTX).highlight
    assert not evaluate(rules, _message("bot", msgtype="m.notice"), CTX).notify
    encrypted = {"type": "m.room.encrypted", "sender": "@bob:example.org", "content": {"ciphertext": "x"}}
    assert evaluate(rules, encrypted, CTX).notify
    assert not evaluate(rules, {**_message("mine"), "sender": ALICE}, CTX).notify
    edit = _message("* fixed", **{"m.relates_to": {"rel_type": "m.replace", "event_id": "$e"}})
    assert not evaluate(rules, edit, CTX).notify


async def test_sync_counts_follow_the_push_rules(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, preset="public_chat")
    await server.api("POST", f"join/{quote(room)}", bob, json={})
    await sync(server, alice)

    async def send(content: dict[str, object], txn: str) -> None:
        response = await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/{txn}", bob, json=content)
        assert response.status_code == 200, response.text

    await send({"msgtype": "m.text", "body": "plain"}, "t1")
    await send({"msgtype": "m.notice", "body": "a notice"}, "t2")
    await send({"msgtype": "m.text", "body": "ping", "m.mentions": {"user_ids": [alice.user_id]}}, "t3")
    counts = (await sync(server, alice))["rooms"]["join"][room]["unread_notifications"]
    assert counts == {"notification_count": 2, "highlight_count": 1}

    # A room rule with no actions silences the room, except for the mention: override
    # rules (.m.rule.is_user_mention) are evaluated before room rules.
    mute = await server.api("PUT", f"pushrules/global/room/{quote(room)}", alice, json={"actions": []})
    assert mute.status_code == 200
    body = await sync(server, alice, filter=json.dumps({"room": {"timeline": {"limit": 1}}}))
    assert body["rooms"]["join"][room]["unread_notifications"] == {"notification_count": 1, "highlight_count": 1}
    # The master rule silences everything.
    await server.api("PUT", "pushrules/global/override/.m.rule.master/enabled", alice, json={"enabled": True})
    body = await sync(server, alice, filter=json.dumps({"room": {"timeline": {"limit": 1}}}))
    assert body["rooms"]["join"][room]["unread_notifications"] == {"notification_count": 0, "highlight_count": 0}


async def test_notifications_list(server: RunningServer) -> None:
    alice = await server.register()
    bob = await server.register()
    room = await create_room(server, alice, preset="public_chat")
    await server.api("POST", f"join/{quote(room)}", bob, json={})
    ids = []
    for i, content in enumerate([
        {"msgtype": "m.text", "body": "one"},
        {"msgtype": "m.notice", "body": "quiet"},
        {"msgtype": "m.text", "body": "two", "m.mentions": {"user_ids": [alice.user_id]}},
        {"msgtype": "m.text", "body": "three"},
    ]):
        sent = await server.api("PUT", f"rooms/{quote(room)}/send/m.room.message/n{i}", bob, json=content)
        ids.append(sent.json()["event_id"])
    body = (await server.api("GET", "notifications", alice)).json()
    assert [n["event"]["event_id"] for n in body["notifications"]] == [ids[3], ids[2], ids[0]]
    first = body["notifications"][0]
    assert first["room_id"] == room and first["read"] is False and "notify" in first["actions"]
    highlights = (await server.api("GET", "notifications", alice, params={"only": "highlight"})).json()
    assert [n["event"]["event_id"] for n in highlights["notifications"]] == [ids[2]]
    page = (await server.api("GET", "notifications", alice, params={"limit": 2})).json()
    assert len(page["notifications"]) == 2
    rest = (await server.api("GET", "notifications", alice, params={"from": page["next_token"]})).json()
    assert [n["event"]["event_id"] for n in rest["notifications"]] == [ids[0]]
    # A read receipt marks them read.
    await server.api("POST", f"rooms/{quote(room)}/receipt/m.read/{quote(ids[3])}", alice, json={})
    after = (await server.api("GET", "notifications", alice)).json()
    assert all(n["read"] for n in after["notifications"])
    assert (await server.api("GET", "notifications", alice, params={"from": "x"})).status_code == 400

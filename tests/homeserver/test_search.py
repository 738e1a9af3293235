"""Server-side search (``POST /search``) over real HTTP: what matches, what stays
hidden (other rooms, history before a `joined` boundary, after leaving, ignored
users, encrypted and redacted events), ordering, paging, context, state, groups."""

from __future__ import annotations

from typing import Any

from tests.homeserver.room_helpers import create_room, expect_error, send_text
from tests.support.server import Account, RunningServer


async def _search(server: RunningServer, account: Account, criteria: dict[str, Any],
                  next_batch: str | None = None) -> dict[str, Any]:
    params = {"next_batch": next_batch} if next_batch is not None else {}
    response = await server.api("POST", "search", account, json={"search_categories": {"room_events": criteria}},
                                params=params)
    assert response.status_code == 200, response.text
    return dict(response.json()["search_categories"]["room_events"])


def _bodies(found: dict[str, Any]) -> list[str]:
    return [r["result"]["content"]["body"] for r in found["results"]]


async def test_search_finds_visible_plaintext_only(server: RunningServer) -> None:
    alice, bob, carol = await server.register(), await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat", name="Hidden Garden")
    await send_text(server, alice, room, "before bob: tulip bulbs")
    assert (await server.api("PUT", f"rooms/{room}/state/m.room.history_visibility/", alice,
                             json={"history_visibility": "joined"})).status_code == 200
    await send_text(server, alice, room, "still before bob: tulip soil")
    assert (await server.api("POST", f"rooms/{room}/join", bob)).status_code == 200
    for event_type, content in (("m.room.name", {"name": "Garden Planning"}),
                                ("m.room.topic", {"topic": "tulips and roses"})):
        assert (await server.api("PUT", f"rooms/{room}/state/{event_type}/", alice, json=content)).status_code == 200
    first = await send_text(server, alice, room, "Tulip festival on Sunday")
    await send_text(server, bob, room, "I love TULIPS, really tulips")
    await send_text(server, alice, room, "no flower words here")
    encrypted = await server.api("PUT", f"rooms/{room}/send/m.room.encrypted/e1", alice, json={
        "algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "tulip", "sender_key": "k", "session_id": "s",
        "device_id": "D"})
    assert encrypted.status_code == 200
    redacted = await send_text(server, alice, room, "tulip to be redacted")
    assert (await server.api("PUT", f"rooms/{room}/redact/{redacted}/r1", alice, json={})).status_code == 200
    # Another room Bob is not in.
    other = await create_room(server, carol)
    await send_text(server, carol, other, "carol's secret tulip")

    body_only = ["content.body"]
    found = await _search(server, bob, {"search_term": "tulip", "order_by": "recent", "keys": body_only})
    # Newest first; case-insensitive; nothing from before Bob's join (joined visibility),
    # nothing encrypted or redacted, nothing from Carol's room.
    assert _bodies(found) == ["I love TULIPS, really tulips", "Tulip festival on Sunday"]
    assert found["count"] == 2 and found["highlights"] == ["tulip"]
    assert "next_batch" not in found
    # rank: occurrences of the words (two in Bob's message).
    ranked = await _search(server, bob, {"search_term": "tulip", "keys": body_only})
    assert [r["rank"] for r in ranked["results"]] == [2.0, 1.0]
    # The topic matches too when every key is searched (the default).
    everything = await _search(server, bob, {"search_term": "tulip", "order_by": "recent"})
    assert [r["result"]["type"] for r in everything["results"]] == [
        "m.room.message", "m.room.message", "m.room.topic"]
    # Every word must occur.
    assert _bodies(await _search(server, bob, {"search_term": "TULIP sunday"})) == ["Tulip festival on Sunday"]
    assert _bodies(await _search(server, bob, {"search_term": "tulip moon"})) == []
    # Names and topics are searchable state; keys choose what is searched.
    # (The first name was set before Bob's join, so it is outside his history.)
    state = await _search(server, bob, {"search_term": "garden", "keys": ["content.name"]})
    assert [r["result"]["content"]["name"] for r in state["results"]] == ["Garden Planning"]
    assert len((await _search(server, alice, {"search_term": "garden", "keys": ["content.name"]}))["results"]) == 2
    assert (await _search(server, bob, {"search_term": "roses", "keys": ["content.body"]}))["results"] == []
    topics = await _search(server, bob, {"search_term": "roses", "keys": ["content.topic"]})
    assert [r["result"]["content"]["topic"] for r in topics["results"]] == ["tulips and roses"]
    # Alice (joined from the start) sees her early messages too.
    alices = _bodies(await _search(server, alice, {"search_term": "tulip", "order_by": "recent",
                                                   "filter": {"types": ["m.room.message"]}}))
    assert alices == ["I love TULIPS, really tulips", "Tulip festival on Sunday",
                      "still before bob: tulip soil", "before bob: tulip bulbs"]

    # Ignoring Alice hides her messages from Bob's search.
    assert (await server.api("PUT", f"user/{bob.user_id}/account_data/m.ignored_user_list", bob,
                             json={"ignored_users": {alice.user_id: {}}})).status_code == 200
    assert _bodies(await _search(server, bob, {"search_term": "tulip", "keys": ["content.body"]})) == [
        "I love TULIPS, really tulips"]
    assert (await server.api("PUT", f"user/{bob.user_id}/account_data/m.ignored_user_list", bob,
                             json={"ignored_users": {}})).status_code == 200
    # After Bob leaves, what was sent later stays hidden; what he saw stays searchable.
    assert (await server.api("POST", f"rooms/{room}/leave", bob)).status_code == 200
    await send_text(server, alice, room, "tulip after bob left")
    after = _bodies(await _search(server, bob, {"search_term": "tulip", "order_by": "recent", "keys": body_only}))
    assert after == ["I love TULIPS, really tulips", "Tulip festival on Sunday"]
    # The same boundaries hold in /messages for the former member (it showed the history
    # from before the join once the member had left).
    history = await server.api("GET", f"rooms/{room}/messages", bob, params={"dir": "b", "limit": 50})
    assert history.status_code == 200, history.text
    seen = [e["content"].get("body") for e in history.json()["chunk"] if e["type"] == "m.room.message"]
    assert "before bob: tulip bulbs" not in seen and "tulip after bob left" not in seen
    assert "Tulip festival on Sunday" in seen
    # Room filter.
    assert _bodies(await _search(server, alice, {"search_term": "tulip", "filter": {"not_rooms": [room]}})) == []
    assert first


async def test_paging_context_state_and_groups(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    assert (await server.api("PUT", f"profile/{alice.user_id}/displayname", alice,
                             json={"displayname": "Alice A."})).status_code == 200
    room = await create_room(server, alice, preset="public_chat", name="Paging")
    assert (await server.api("POST", f"rooms/{room}/join", bob)).status_code == 200
    sent = [await send_text(server, alice if i % 2 else bob, room, f"apple number {i}") for i in range(7)]

    # order_by recent, three per page: 7 results over three pages, no duplicates, none lost.
    seen: list[str] = []
    token = None
    for _ in range(4):
        page = await _search(server, alice, {"search_term": "apple", "order_by": "recent", "filter": {"limit": 3}},
                             token)
        seen += [r["result"]["event_id"] for r in page["results"]]
        token = page.get("next_batch")
        if token is None:
            break
    assert seen == list(reversed(sent))
    # order_by rank pages by offset the same way.
    ranked: list[str] = []
    token = None
    for _ in range(4):
        page = await _search(server, alice, {"search_term": "apple", "filter": {"limit": 3}}, token)
        assert page["count"] == 7
        ranked += [r["result"]["event_id"] for r in page["results"]]
        token = page.get("next_batch")
        if token is None:
            break
    assert sorted(ranked) == sorted(sent) and len(ranked) == 7

    middle = await _search(server, alice, {
        "search_term": "number 3", "include_state": True,
        "event_context": {"before_limit": 1, "after_limit": 2, "include_profile": True},
        "groupings": {"group_by": [{"key": "room_id"}, {"key": "sender"}]},
    })
    [hit] = middle["results"]
    assert hit["result"]["event_id"] == sent[3]
    context = hit["context"]
    assert [e["event_id"] for e in context["events_before"]] == [sent[2]]
    assert [e["event_id"] for e in context["events_after"]] == [sent[4], sent[5]]
    assert context["profile_info"][alice.user_id]["displayname"] == "Alice A."
    assert {"start", "end"} <= set(context)
    assert any(e["type"] == "m.room.name" for e in middle["state"][room])
    assert middle["groups"]["room_id"] == {room: {"results": [sent[3]], "order": 1}}
    assert middle["groups"]["sender"] == {alice.user_id: {"results": [sent[3]], "order": 1}}


async def test_bad_search_requests(server: RunningServer) -> None:
    alice = await server.register()
    for body, errcode in (
        ({}, "M_MISSING_PARAM"),
        ({"search_categories": []}, "M_MISSING_PARAM"),
        ({"search_categories": {"room_events": {}}}, "M_MISSING_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "  "}}}, "M_MISSING_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "x" * 513}}}, "M_MISSING_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "a", "keys": ["content.url"]}}}, "M_INVALID_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "a", "order_by": "old"}}}, "M_INVALID_PARAM"),
        ({"search_categories": {"room_events": {"search_term": "a", "filter": {"limit": -1}}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "a", "event_context": []}}}, "M_BAD_JSON"),
        ({"search_categories": {"room_events": {"search_term": "a",
                                                "groupings": {"group_by": [{"key": "type"}]}}}}, "M_INVALID_PARAM"),
    ):
        response = await server.api("POST", "search", alice, json=body)
        await expect_error(response, 400, errcode)
    for token in ("x1", "p", "pabc", "o" + "9" * 18):
        response = await server.api("POST", "search", alice, params={"next_batch": token},
                                    json={"search_categories": {"room_events": {"search_term": "a"}}})
        await expect_error(response, 400, "M_INVALID_PARAM")
    # No room_events category: nothing searched.
    empty = await server.api("POST", "search", alice, json={"search_categories": {}})
    assert empty.status_code == 200 and empty.json() == {"search_categories": {}}
    # SQL LIKE wildcards and quotes are plain characters.
    room = await create_room(server, alice)
    await send_text(server, alice, room, "100% sure_thing \"quoted\"")
    await send_text(server, alice, room, "100 percent sure")
    for term, expected in (("100%", 1), ("sure_", 1), ('"quoted"', 1), ("%", 1), ("_", 1), ("sure", 2)):
        found = await _search(server, alice, {"search_term": term})
        assert len(found["results"]) == expected, term
    await expect_error(await server.api("POST", "search", json={"search_categories": {}}), 401, "M_MISSING_TOKEN")

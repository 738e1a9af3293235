"""Event relationships over real HTTP: ``/relations`` (filters, paging, recursion, what stays
hidden), ``/threads`` (order, participation, summaries) and ``/timestamp_to_event``; and
migration 0072 copying the relations of events stored before it."""

from __future__ import annotations

import json
import time
from typing import Any

from homeserver.storage.database import Database
from homeserver.storage.migrate import known_migrations
from tests.homeserver.room_helpers import create_room, expect_error, send_text
from tests.homeserver.test_migrations import empty_database_url  # noqa: F401  (fixture)
from tests.support.server import Account, RunningServer

V1 = "/_matrix/client/v1/rooms/{}"


async def _send(server: RunningServer, account: Account, room: str, content: dict[str, Any],
                event_type: str = "m.room.message") -> str:
    txn = f"x{time.monotonic_ns()}"
    response = await server.api("PUT", f"rooms/{room}/send/{event_type}/{txn}", account, json=content)
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


def _reply(root: str, body: str) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body, "m.relates_to": {"rel_type": "m.thread", "event_id": root}}


def _ids(body: dict[str, Any]) -> list[str]:
    return [e["event_id"] for e in body["chunk"]]


async def test_relations_filters_paging_and_visibility(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    assert (await server.api("POST", f"rooms/{room}/join", bob)).status_code == 200
    parent = await send_text(server, alice, room, "parent")
    thread = [await _send(server, bob, room, _reply(parent, f"reply {i}")) for i in range(4)]
    reaction = await _send(server, bob, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": parent,
                                                                "key": "👍"}}, "m.reaction")
    encrypted = await _send(server, bob, room, {"algorithm": "m.megolm.v1.aes-sha2", "ciphertext": "c",
                                                "sender_key": "k", "session_id": "s", "device_id": "D",
                                                "m.relates_to": {"rel_type": "m.thread", "event_id": parent}},
                            "m.room.encrypted")
    gone = await _send(server, bob, room, _reply(parent, "to be redacted"))
    assert (await server.api("PUT", f"rooms/{room}/redact/{gone}/r1", bob, json={})).status_code == 200
    # Unrelated and malformed relations are not children.
    await _send(server, bob, room, {"msgtype": "m.text", "body": "x", "m.relates_to": {"event_id": parent}})
    await _send(server, bob, room, {"msgtype": "m.text", "body": "y", "m.relates_to": {"rel_type": "m.thread",
                                                                                     "event_id": 5}})
    base = V1.format(room) + f"/relations/{parent}"

    everything = (await server.api("GET", base, alice, params={"limit": 50})).json()
    # Newest first by default; the redacted reply is gone; encrypted events relate too.
    assert _ids(everything) == [encrypted, reaction, *reversed(thread)]
    assert "next_batch" not in everything
    threads_only = (await server.api("GET", base + "/m.thread", alice, params={"limit": 50})).json()
    assert _ids(threads_only) == [encrypted, *reversed(thread)]
    typed = (await server.api("GET", base + "/m.thread/m.room.encrypted", alice)).json()
    assert _ids(typed) == [encrypted]
    assert _ids((await server.api("GET", base + "/m.annotation/m.reaction", alice)).json()) == [reaction]

    # Paging forwards and backwards, two at a time, loses and repeats nothing.
    for direction, expected in (("b", [encrypted, *reversed(thread)]), ("f", [*thread, encrypted])):
        seen: list[str] = []
        token = None
        for _ in range(5):
            params: dict[str, Any] = {"limit": 2, "dir": direction, **({"from": token} if token else {})}
            page = (await server.api("GET", base + "/m.thread", alice, params=params)).json()
            seen += _ids(page)
            token = page.get("next_batch")
            if token is None:
                break
        assert seen == expected, direction

    # A parent one cannot see, or that does not exist, is a 404.
    carol = await server.register()
    private = await create_room(server, alice)
    secret = await send_text(server, alice, private, "secret")
    await _send(server, alice, private, _reply(secret, "secret reply"))
    for account, path in ((carol, V1.format(private) + f"/relations/{secret}"),
                          (alice, V1.format(room) + "/relations/$nosuchevent"),
                          (alice, V1.format(private) + f"/relations/{parent}")):
        await expect_error(await server.api("GET", path, account), 404, "M_NOT_FOUND")
    for params in ({"dir": "x"}, {"limit": "-1"}, {"from": "nonsense"}, {"recurse": "yes"}):
        await expect_error(await server.api("GET", base, alice, params=params), 400, "M_INVALID_PARAM")

    # recurse: a reaction to a reply shows up from the root.
    deep = await _send(server, alice, room, {"m.relates_to": {"rel_type": "m.annotation", "event_id": thread[0],
                                                              "key": "❤"}}, "m.reaction")
    flat = (await server.api("GET", base, alice, params={"limit": 50})).json()
    assert deep not in _ids(flat)
    recursed = (await server.api("GET", base, alice, params={"limit": 50, "recurse": "true"})).json()
    assert deep in _ids(recursed) and recursed["recursion_depth"] >= 2


async def test_threads_list_and_timestamp_to_event(server: RunningServer) -> None:
    alice, bob = await server.register(), await server.register()
    room = await create_room(server, alice, preset="public_chat")
    assert (await server.api("POST", f"rooms/{room}/join", bob)).status_code == 200
    first = await send_text(server, alice, room, "first root")
    second = await send_text(server, bob, room, "second root")
    third = await send_text(server, bob, room, "third root")
    await _send(server, bob, room, _reply(first, "1a"))
    await _send(server, bob, room, _reply(second, "2a"))
    latest_of_first = await _send(server, bob, room, _reply(first, "1b"))
    await _send(server, bob, room, _reply(third, "3a"))
    url = V1.format(room) + "/threads"

    listed = (await server.api("GET", url, alice)).json()
    # Latest activity first.
    assert _ids(listed) == [third, first, second]
    summary = listed["chunk"][1]["unsigned"]["m.relations"]["m.thread"]
    assert summary["count"] == 2 and summary["latest_event"]["event_id"] == latest_of_first
    assert summary["current_user_participated"] is True  # Alice started it
    assert listed["chunk"][0]["unsigned"]["m.relations"]["m.thread"]["current_user_participated"] is False
    # Participated: threads Alice started or replied to.
    mine = (await server.api("GET", url, alice, params={"include": "participated"})).json()
    assert _ids(mine) == [first]
    await _send(server, alice, room, _reply(second, "2b"))
    mine = (await server.api("GET", url, alice, params={"include": "participated"})).json()
    assert _ids(mine) == [second, first]
    # Paging.
    page = (await server.api("GET", url, alice, params={"limit": 2})).json()
    assert len(page["chunk"]) == 2 and "next_batch" in page
    rest = (await server.api("GET", url, alice, params={"limit": 2, "from": page["next_batch"]})).json()
    assert _ids(page) + _ids(rest) == [second, third, first]
    assert "next_batch" not in rest
    await expect_error(await server.api("GET", url, alice, params={"include": "some"}), 400, "M_INVALID_PARAM")
    carol = await server.register()
    private = await create_room(server, alice)
    await expect_error(await server.api("GET", V1.format(private) + "/threads", carol), 403, "M_FORBIDDEN")

    # timestamp_to_event: the closest visible event in either direction.
    ts_url = V1.format(room) + "/timestamp_to_event"
    event = (await server.api("GET", f"rooms/{room}/event/{second}", alice)).json()
    ts = event["origin_server_ts"]
    after = (await server.api("GET", ts_url, alice, params={"ts": ts, "dir": "f"})).json()
    assert after["origin_server_ts"] >= ts
    before = (await server.api("GET", ts_url, alice, params={"ts": ts, "dir": "b"})).json()
    assert before["origin_server_ts"] <= ts
    assert second in (after["event_id"], before["event_id"]) or after["origin_server_ts"] == ts
    await expect_error(await server.api("GET", ts_url, alice, params={"ts": 0, "dir": "b"}), 404, "M_NOT_FOUND")
    future = (await server.api("GET", ts_url, alice, params={"ts": 2**50, "dir": "b"})).json()
    assert future["event_id"]
    for params in ({"dir": "f"}, {"ts": ts}, {"ts": "soon", "dir": "f"}, {"ts": ts, "dir": "up"}):
        response = await server.api("GET", ts_url, alice, params=params)
        assert response.status_code == 400 and response.json()["errcode"] in ("M_MISSING_PARAM", "M_INVALID_PARAM")
    await expect_error(await server.api("GET", V1.format(private) + "/timestamp_to_event", carol,
                                        params={"ts": ts, "dir": "f"}), 403, "M_FORBIDDEN")


async def test_migration_copies_existing_relations(empty_database_url: str) -> None:  # noqa: F811
    old = Database(empty_database_url)
    await old.connect()
    with old.activated():
        await old.execute("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied_ts BIGINT NOT NULL)")
        for migration in known_migrations():
            if migration.version >= 72:
                continue
            for statement in migration.upgrade(old.dialect):
                await old.execute(statement)
            await old.execute("INSERT INTO schema_version (version, applied_ts) VALUES (?, ?)",
                              (migration.version, int(time.time() * 1000)))
        contents: list[tuple[str, Any]] = [
            ("$root", {"body": "root"}),
            ("$thread", {"body": "r", "m.relates_to": {"rel_type": "m.thread", "event_id": "$root"}}),
            ("$edit", {"body": "e", "m.relates_to": {"rel_type": "m.replace", "event_id": "$root"}}),
            ("$no_type", {"m.relates_to": {"event_id": "$root"}}),
            ("$number", {"m.relates_to": {"rel_type": "m.thread", "event_id": 7}}),
            ("$long", {"m.relates_to": {"rel_type": "m.thread", "event_id": "$" + "x" * 300}}),
            ("$list", {"m.relates_to": ["not", "an", "object"]}),
        ]
        for pos, (event_id, content) in enumerate(contents, start=1):
            pdu = {"type": "m.room.message", "sender": "@a:x", "room_id": "!r:x", "content": content,
                   "depth": pos, "origin_server_ts": pos, "prev_events": [], "auth_events": []}
            await old.execute(
                "INSERT INTO events (stream_pos, event_id, room_id, type, state_key, sender, depth, "
                "origin_server_ts, pdu) VALUES (?, ?, '!r:x', 'm.room.message', NULL, '@a:x', ?, ?, ?)",
                (pos, event_id, pos, pos, json.dumps(pdu, ensure_ascii=False)))
    await old.close()

    upgraded = Database(empty_database_url)
    await upgraded.open()
    with upgraded.activated():
        rows = await upgraded.fetch(
            "SELECT event_id, room_id, relates_to, rel_type, type, sender, stream_pos FROM event_relations "
            "ORDER BY stream_pos")
    await upgraded.close()
    assert [dict(r) for r in rows] == [
        {"event_id": "$thread", "room_id": "!r:x", "relates_to": "$root", "rel_type": "m.thread",
         "type": "m.room.message", "sender": "@a:x", "stream_pos": 2},
        {"event_id": "$edit", "room_id": "!r:x", "relates_to": "$root", "rel_type": "m.replace",
         "type": "m.room.message", "sender": "@a:x", "stream_pos": 3},
    ]

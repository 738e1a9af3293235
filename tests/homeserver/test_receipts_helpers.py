"""Helpers shared by the receipts / typing / presence / account-data / unread tests.

(No tests here: rooms, messages and syncs over real HTTP, used by the
ephemeral-stream test modules.)
"""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import quote

from tests.support.server import Account, RunningServer


def q(value: str) -> str:
    """Percent-encode one path segment (room ids, event ids, user ids)."""
    return quote(value, safe="")


async def create_room(server: RunningServer, owner: Account, *members: Account,
                      is_direct: bool = False) -> str:
    """A room with ``owner`` and every member joined."""
    body: dict[str, Any] = {"preset": "private_chat", "invite": [m.user_id for m in members]}
    if is_direct:
        body["is_direct"] = True
        body["preset"] = "trusted_private_chat"
    response = await server.api("POST", "createRoom", owner, json=body)
    assert response.status_code == 200, response.text
    room_id = str(response.json()["room_id"])
    for member in members:
        joined = await server.api("POST", f"rooms/{q(room_id)}/join", member, json={})
        assert joined.status_code == 200, joined.text
    return room_id


async def send_text(server: RunningServer, sender: Account, room_id: str, body: str = "hi") -> str:
    txn = secrets.token_hex(6)
    response = await server.api(
        "PUT", f"rooms/{q(room_id)}/send/m.room.message/{txn}", sender,
        json={"msgtype": "m.text", "body": body},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


async def sync(server: RunningServer, account: Account, since: str | None = None,
               timeout_ms: int = 0, **params: Any) -> dict[str, Any]:
    query: dict[str, Any] = {"timeout": str(timeout_ms), **params}
    if since is not None:
        query["since"] = since
    response = await server.api("GET", "sync", account, params=query)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def joined_room(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    room: dict[str, Any] = body.get("rooms", {}).get("join", {}).get(room_id, {})
    return room


def ephemeral(body: dict[str, Any], room_id: str, event_type: str) -> list[dict[str, Any]]:
    events = joined_room(body, room_id).get("ephemeral", {}).get("events", [])
    return [e for e in events if e.get("type") == event_type]


def presence_of(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The latest presence content per sender in a sync response."""
    out: dict[str, dict[str, Any]] = {}
    for event in body.get("presence", {}).get("events", []):
        assert event["type"] == "m.presence"
        out[event["sender"]] = event["content"]
    return out


def global_account_data(body: dict[str, Any]) -> dict[str, Any]:
    return {e["type"]: e["content"] for e in body.get("account_data", {}).get("events", [])}


def room_account_data(body: dict[str, Any], room_id: str) -> dict[str, Any]:
    events = joined_room(body, room_id).get("account_data", {}).get("events", [])
    return {e["type"]: e["content"] for e in events}


def unread(body: dict[str, Any], room_id: str) -> int | None:
    counts = joined_room(body, room_id).get("unread_notifications")
    if counts is None:
        return None
    assert set(counts) == {"notification_count", "highlight_count"}
    assert counts["highlight_count"] == 0
    value: int = counts["notification_count"]
    return value


async def sync_until(server: RunningServer, account: Account, since: str,
                     predicate: Any, rounds: int = 20, timeout_ms: int = 5000) -> dict[str, Any]:
    """Long-poll incrementally until ``predicate(body)`` holds; return that body
    (with ``next_batch`` of the last response)."""
    for _ in range(rounds):
        body = await sync(server, account, since, timeout_ms=timeout_ms)
        if predicate(body):
            return body
        since = body["next_batch"]
    raise AssertionError("the expected data never arrived")

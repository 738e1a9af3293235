"""Helpers shared by the room, sync and to-device tests."""

from __future__ import annotations

import itertools
from typing import Any

from tests.support.server import Account, RunningServer

_txn = itertools.count()


async def create_room(server: RunningServer, account: Account, **body: Any) -> str:
    response = await server.api("POST", "createRoom", account, json=body)
    assert response.status_code == 200, response.text
    return str(response.json()["room_id"])


async def send_text(server: RunningServer, account: Account, room_id: str, body: str,
                    txn_id: str | None = None) -> str:
    txn = txn_id or f"t{next(_txn)}"
    response = await server.api("PUT", f"rooms/{room_id}/send/m.room.message/{txn}", account,
                                json={"msgtype": "m.text", "body": body})
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


async def sync(server: RunningServer, account: Account, since: str | None = None, timeout: int = 0,  # noqa: ASYNC109
               **params: Any) -> dict[str, Any]:
    query: dict[str, Any] = {"timeout": timeout, **params}
    if since is not None:
        query["since"] = since
    response = await server.api("GET", "sync", account, params=query)
    assert response.status_code == 200, response.text
    return dict(response.json())


def timeline(body: dict[str, Any], room_id: str) -> list[dict[str, Any]]:
    room = body["rooms"]["join"].get(room_id)
    return list(room["timeline"]["events"]) if room else []


def bodies(events: list[dict[str, Any]]) -> list[str]:
    return [e["content"]["body"] for e in events if e["type"] == "m.room.message" and "body" in e["content"]]


async def expect_error(response: Any, status: int, errcode: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["errcode"] == errcode, response.text

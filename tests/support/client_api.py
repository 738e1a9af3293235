"""What tests do through a homeserver's client API, Parley's or Synapse's (``RunningServer``, ``SynapseClient``)."""

from __future__ import annotations

from typing import Any, Protocol

import httpx

from tests.support.server import Account

# Long polls of /sync before a test gives up waiting for something (each returns as soon as
# anything happens; the bound only keeps a broken federation from hanging the run).
MAX_POLLS = 40
POLL_MS = 5000


class ClientApi(Protocol):
    async def api(self, method: str, path: str, account: Account | None = None, json: Any = None,
                  **kwargs: Any) -> httpx.Response: ...


def ok(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, f"{response.request.method} {response.request.url}: {response.text}"
    body = response.json()
    assert isinstance(body, dict)
    return body


async def create_room(server: ClientApi, owner: Account, **body: Any) -> str:
    answer = ok(await server.api("POST", "createRoom", owner, json={"preset": "public_chat", **body}))
    return str(answer["room_id"])


async def join(server: ClientApi, account: Account, room: str, via: str) -> None:
    answer = ok(await server.api("POST", f"join/{room}", account, params={"server_name": via}, json={}))
    assert answer["room_id"] == room or room.startswith("#")


async def say(server: ClientApi, account: Account, room_id: str, text: str) -> str:
    import secrets

    answer = ok(await server.api("PUT", f"rooms/{room_id}/send/m.room.message/{secrets.token_hex(6)}",
                                 account, json={"msgtype": "m.text", "body": text}))
    return str(answer["event_id"])


async def set_state(server: ClientApi, account: Account, room_id: str, event_type: str,
                    content: dict[str, Any], state_key: str = "") -> str:
    answer = ok(await server.api("PUT", f"rooms/{room_id}/state/{event_type}/{state_key}", account,
                                 json=content))
    return str(answer["event_id"])


class Syncer:
    """One account's /sync stream: ``until`` long-polls until a predicate holds on what arrived."""

    def __init__(self, server: ClientApi, account: Account) -> None:
        self.server = server
        self.account = account
        self.since: str | None = None
        self.timeline: dict[str, list[dict[str, Any]]] = {}
        self.invites: dict[str, list[dict[str, Any]]] = {}

    async def poll(self) -> None:
        params = {"timeout": str(POLL_MS) if self.since else "0", **({"since": self.since} if self.since else {})}
        body = ok(await self.server.api("GET", "sync", self.account, params=params))
        self.since = body["next_batch"]
        rooms = body.get("rooms", {})
        for room_id, room in rooms.get("join", {}).items():
            self.timeline.setdefault(room_id, []).extend(room.get("timeline", {}).get("events", []))
        for room_id, room in rooms.get("invite", {}).items():
            self.invites[room_id] = room.get("invite_state", {}).get("events", [])

    async def until(self, what: str, predicate: Any) -> None:
        for _ in range(MAX_POLLS):
            if predicate(self):
                return
            await self.poll()
        assert predicate(self), f"{self.account.user_id} never saw {what}"

    def bodies(self, room_id: str) -> list[str]:
        return [e["content"].get("body") for e in self.timeline.get(room_id, []) if e.get("type") == "m.room.message"]

    async def until_message(self, room_id: str, text: str) -> dict[str, Any]:
        await self.until(f"{text!r} in {room_id}", lambda s: text in s.bodies(room_id))
        return next(e for e in self.timeline[room_id] if e.get("content", {}).get("body") == text)

    async def until_event(self, room_id: str, event_id: str) -> dict[str, Any]:
        """The event with that id, once it is in the room's timeline."""
        def found(s: Syncer) -> bool:
            return any(e.get("event_id") == event_id for e in s.timeline.get(room_id, []))
        await self.until(f"{event_id} in {room_id}", found)
        return next(e for e in self.timeline[room_id] if e.get("event_id") == event_id)


async def joined_members(server: ClientApi, account: Account, room_id: str) -> set[str]:
    return set(ok(await server.api("GET", f"rooms/{room_id}/joined_members", account))["joined"])


async def state_content(server: ClientApi, account: Account, room_id: str, event_type: str,
                        state_key: str = "") -> dict[str, Any]:
    return ok(await server.api("GET", f"rooms/{room_id}/state/{event_type}/{state_key}", account))


async def history(server: ClientApi, account: Account, room_id: str, page: int = 10) -> list[str]:
    """Every message body of /messages backwards to the room's start, oldest first."""
    bodies: list[str] = []
    token: str | None = None
    for _ in range(100):
        params = {"dir": "b", "limit": str(page), **({"from": token} if token else {})}
        answer = ok(await server.api("GET", f"rooms/{room_id}/messages", account, params=params))
        bodies += [e["content"].get("body") for e in answer["chunk"] if e["type"] == "m.room.message"]
        if not answer["chunk"] or "end" not in answer:
            break
        token = answer["end"]
    return bodies[::-1]

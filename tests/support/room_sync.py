"""Client-side waits for federation tests: long-poll /sync until something holds (no timing assumptions)."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable
from typing import Any

from tests.support.server import Account, ClientCalls

JsonDict = dict[str, Any]


class Syncer:
    """One user's /sync stream: ``until(want)`` long-polls until ``want`` holds for what came in since."""

    def __init__(self, server: ClientCalls, account: Account) -> None:
        self.server, self.account = server, account
        self.since: str | None = None

    async def start(self) -> Syncer:
        await self._sync(0)
        return self

    async def _sync(self, timeout_ms: int) -> JsonDict:
        params = {"timeout": str(timeout_ms), **({"since": self.since} if self.since else {})}
        response = await self.server.api("GET", "sync", self.account, params=params)
        assert response.status_code == 200, response.text
        body: JsonDict = response.json()
        self.since = body["next_batch"]
        return body

    async def until(self, want: Callable[[list[JsonDict]], bool]) -> list[JsonDict]:
        """Sync bodies from now on until ``want(bodies)``; returns them."""
        bodies: list[JsonDict] = []
        while not want(bodies):
            bodies.append(await self._sync(20000))
        return bodies

    async def check_until(self, check: Callable[[], Awaitable[bool]]) -> None:
        """Until ``check()`` holds, wait for the next change this user's /sync reports (the position is
        taken before each check, so a change between the check and the wait is not missed)."""
        if self.since is None:
            await self._sync(0)
        while not await check():
            await self._sync(20000)


def room_events(bodies: list[JsonDict], room_id: str, section: str = "timeline",
                kinds: tuple[str, ...] = ("join", "leave")) -> list[JsonDict]:
    """The events of ``section`` (timeline, state, ephemeral) of the room in ``bodies``."""
    out: list[JsonDict] = []
    for body in bodies:
        for kind in kinds:
            room = body.get("rooms", {}).get(kind, {}).get(room_id, {})
            out += room.get(section, {}).get("events", [])
    return out


def bodies_of(bodies: list[JsonDict], room_id: str) -> list[str]:
    return [str(e["content"].get("body")) for e in room_events(bodies, room_id)
            if e.get("type") == "m.room.message"]


async def say(server: ClientCalls, account: Account, room_id: str, text: str) -> str:
    response = await server.api("PUT", f"rooms/{room_id}/send/m.room.message/{secrets.token_hex(6)}", account,
                                json={"msgtype": "m.text", "body": text})
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


async def put_state(server: ClientCalls, account: Account, room_id: str, event_type: str, content: JsonDict,
                    state_key: str = "") -> str:
    response = await server.api("PUT", f"rooms/{room_id}/state/{event_type}/{state_key}", account, json=content)
    assert response.status_code == 200, response.text
    return str(response.json()["event_id"])


async def joined(server: ClientCalls, account: Account, room_id: str) -> set[str]:
    response = await server.api("GET", f"rooms/{room_id}/joined_members", account)
    assert response.status_code == 200, response.text
    return set(response.json()["joined"])


async def room_state(server: ClientCalls, account: Account, room_id: str) -> dict[tuple[str, str], JsonDict]:
    response = await server.api("GET", f"rooms/{room_id}/state", account)
    assert response.status_code == 200, response.text
    return {(e["type"], e["state_key"]): e for e in response.json()}

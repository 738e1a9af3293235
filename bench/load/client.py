"""A tiny async Matrix client over httpx that speaks only the standard C-S API.

Nothing here knows which homeserver it talks to: every request is a spec
path (``/_matrix/client/v3/...``) with the spec's JSON shapes, so the same
load runs against Parley and Synapse.  HTTP/1.1 by default; ``http2=True``
speaks h2c (prior knowledge), which only some servers offer.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx

V3 = "/_matrix/client/v3"

#: The /sync filter every bench sync uses: timelines large enough that an
#: incremental sync is never ``limited`` at the bench's rates, and nothing the
#: bench does not read (presence, ephemeral, account data).
SYNC_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "account_data": {"types": []},
    "room": {
        "timeline": {"limit": 1000},
        "state": {"lazy_load_members": True},
        "ephemeral": {"types": []},
        "account_data": {"types": []},
    },
}


class ApiError(Exception):
    """The server answered with an error (or something that is not the spec's JSON)."""

    def __init__(self, method: str, path: str, status: int, body: str) -> None:
        self.status = status
        self.errcode = ""
        try:
            parsed = json.loads(body)
            if isinstance(parsed, dict):
                self.errcode = str(parsed.get("errcode", ""))
        except ValueError:
            pass
        super().__init__(f"{method} {path} -> {status} {body[:300]}")


@dataclass
class Stats:
    """Counters shared by every client of one run."""

    requests: int = 0
    rate_limited: int = 0
    errors: int = 0


@dataclass
class Session:
    user_id: str
    device_id: str
    access_token: str
    password: str = ""
    localpart: str = ""
    next_batch: str = ""
    filter_param: str = ""


def make_http(base_url: str, *, http2: bool = False, max_connections: int | None = None,
              timeout: float = 120.0) -> httpx.AsyncClient:
    """An httpx client for the bench: no connection-count limit unless asked, long read timeout."""
    limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections,
                          keepalive_expiry=120.0)
    return httpx.AsyncClient(
        base_url=base_url,
        http1=not http2,
        http2=http2,
        limits=limits,
        timeout=httpx.Timeout(timeout, connect=30.0),
        trust_env=False,  # loopback only: never go through a proxy from the environment
    )


@dataclass
class MatrixClient:
    """Standard C-S API calls on one httpx client (shared by several sessions if wanted)."""

    http: httpx.AsyncClient
    stats: Stats = field(default_factory=Stats)
    max_rate_limit_retries: int = 20

    async def request(self, method: str, path: str, *, token: str | None = None,
                      body: Any = None, params: dict[str, str] | None = None,
                      read_timeout: float | None = None) -> dict[str, Any]:
        """One request; retries a 429 after the server's ``retry_after_ms`` (counted)."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        kwargs: dict[str, Any] = {"headers": headers, "params": params}
        if body is not None:
            kwargs["json"] = body
        if read_timeout is not None:
            kwargs["timeout"] = httpx.Timeout(read_timeout, connect=30.0)
        for _ in range(self.max_rate_limit_retries + 1):
            self.stats.requests += 1
            response = await self.http.request(method, path, **kwargs)
            if response.status_code == 429:
                self.stats.rate_limited += 1
                retry_ms = 1000
                try:
                    retry_ms = int(response.json().get("retry_after_ms", 1000))
                except (ValueError, AttributeError):
                    pass
                await asyncio.sleep(min(max(retry_ms, 50), 5000) / 1000)
                continue
            if response.status_code != 200:
                self.stats.errors += 1
                raise ApiError(method, path, response.status_code, response.text)
            data = response.json()
            if not isinstance(data, dict):
                raise ApiError(method, path, response.status_code, response.text)
            return data
        raise ApiError(method, path, 429, "still rate limited after retries")

    # ------------------------------------------------------------------ discovery
    async def versions(self) -> dict[str, Any]:
        return await self.request("GET", "/_matrix/client/versions")

    # ------------------------------------------------------------------ accounts
    async def register(self, localpart: str, password: str) -> Session:
        """POST /register with the m.login.dummy stage (user-interactive auth, two legs if asked)."""
        body: dict[str, Any] = {
            "username": localpart,
            "password": password,
            "initial_device_display_name": "bench",
            "auth": {"type": "m.login.dummy"},
        }
        try:
            data = await self.request("POST", V3 + "/register", body=body)
        except ApiError as exc:
            # Some servers want the session from a first, auth-less leg.
            if exc.status != 401:
                raise
            first = await self._uia_session(body)
            body["auth"] = {"type": "m.login.dummy", "session": first}
            data = await self.request("POST", V3 + "/register", body=body)
        return Session(str(data["user_id"]), str(data.get("device_id", "")),
                       str(data["access_token"]), password, localpart)

    async def _uia_session(self, body: dict[str, Any]) -> str:
        bare = {k: v for k, v in body.items() if k != "auth"}
        response = await self.http.post(V3 + "/register", json=bare)
        if response.status_code != 401:
            raise ApiError("POST", V3 + "/register", response.status_code, response.text)
        return str(response.json().get("session", ""))

    async def login(self, localpart: str, password: str) -> Session:
        body = {
            "type": "m.login.password",
            "identifier": {"type": "m.id.user", "user": localpart},
            "password": password,
            "initial_device_display_name": "bench",
        }
        data = await self.request("POST", V3 + "/login", body=body)
        return Session(str(data["user_id"]), str(data["device_id"]), str(data["access_token"]),
                       password, localpart)

    async def upload_filter(self, session: Session, definition: dict[str, Any]) -> str:
        """POST /user/{userId}/filter; returns the filter id."""
        path = f"{V3}/user/{quote(session.user_id, safe='')}/filter"
        data = await self.request("POST", path, token=session.access_token, body=definition)
        return str(data["filter_id"])

    # ------------------------------------------------------------------ rooms
    async def create_room(self, session: Session, name: str, preset: str = "public_chat") -> str:
        body = {"name": name, "preset": preset, "visibility": "private"}
        data = await self.request("POST", V3 + "/createRoom", token=session.access_token, body=body)
        return str(data["room_id"])

    async def join(self, session: Session, room_id: str) -> str:
        path = f"{V3}/join/{quote(room_id, safe='')}"
        data = await self.request("POST", path, token=session.access_token, body={})
        return str(data.get("room_id", room_id))

    async def send_text(self, session: Session, room_id: str, txn_id: str, body: str) -> str:
        path = (f"{V3}/rooms/{quote(room_id, safe='')}/send/m.room.message/"
                f"{quote(txn_id, safe='')}")
        content = {"msgtype": "m.text", "body": body}
        data = await self.request("PUT", path, token=session.access_token, body=content)
        return str(data["event_id"])

    async def messages(self, session: Session, room_id: str, from_token: str | None,
                       limit: int = 50, direction: str = "b") -> dict[str, Any]:
        params = {"dir": direction, "limit": str(limit)}
        if from_token:
            params["from"] = from_token
        path = f"{V3}/rooms/{quote(room_id, safe='')}/messages"
        return await self.request("GET", path, token=session.access_token, params=params)

    # ------------------------------------------------------------------ sync
    async def sync(self, session: Session, since: str | None, timeout_ms: int,
                   filter_param: str | None = None) -> dict[str, Any]:
        params = {"timeout": str(timeout_ms)}
        if since:
            params["since"] = since
        if filter_param:
            params["filter"] = filter_param
        return await self.request("GET", V3 + "/sync", token=session.access_token, params=params,
                                  read_timeout=timeout_ms / 1000 + 60)


def timeline_events(sync: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(room_id, event) for every timeline event of the joined rooms in a /sync response."""
    out: list[tuple[str, dict[str, Any]]] = []
    joined = (sync.get("rooms") or {}).get("join") or {}
    for room_id, room in joined.items():
        for event in ((room or {}).get("timeline") or {}).get("events") or []:
            if isinstance(event, dict):
                out.append((room_id, event))
    return out


def limited_rooms(sync: dict[str, Any]) -> int:
    """How many joined rooms of a /sync response have a ``limited`` timeline."""
    joined = (sync.get("rooms") or {}).get("join") or {}
    return sum(1 for room in joined.values() if ((room or {}).get("timeline") or {}).get("limited"))


def now() -> float:
    """Monotonic seconds for latency measurement."""
    return time.perf_counter()

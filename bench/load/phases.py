"""The phases of one load run against one homeserver.

Every phase is bounded in count (the ``Size``) and in time (``deadline``), and
only talks to ``target.base_url``.  A failing phase is recorded with its error
and the phases that depend on it are skipped; the run never raises.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bench.load.client import (
    SYNC_FILTER,
    ApiError,
    MatrixClient,
    Session,
    Stats,
    limited_rooms,
    make_http,
    now,
    timeline_events,
)
from bench.load.idle import idle_longpolls
from bench.load.metrics import PhaseResult, RunResult, Size

#: Filter of the timed initial syncs: what a client asks for on start-up.
INITIAL_SYNC_FILTER: dict[str, Any] = {
    "presence": {"types": []},
    "room": {"timeline": {"limit": 20}, "state": {"lazy_load_members": True}},
}

LONGPOLL_MS = 30_000
#: Phases whose failure leaves later phases without their users or rooms; a
#: failed send, delivery or read phase is recorded and the run goes on.
BLOCKING = {"register", "login", "create_rooms", "join"}
#: Rooms are created this many at a time.
CREATE_CONCURRENCY = 16
#: The ceiling phase stops at its request count or after this many seconds.
CEILING_SECONDS = 10.0
#: The send phase stops issuing messages after this many seconds (or earlier
#: when the run's time limit comes near); the figures are of what was sent.
SEND_SECONDS = 75.0
#: Reserved at the end of the run for the phases after sending.
AFTER_SEND_SECONDS = 75.0


@dataclass
class Target:
    """A homeserver to load: where it listens and how to read its memory."""

    name: str
    base_url: str
    http2: bool = False
    rss_bytes: Callable[[], int | None] = lambda: None


@dataclass
class User:
    index: int
    session: Session
    client: MatrixClient
    rooms: list[int] = field(default_factory=list)


SKIPPED = object()


class PhaseFailed(Exception):
    pass


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


class Delivery:
    """Which receiver still waits for which message; latencies of every arrival."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.sent_at: dict[int, float] = {}
        self.pending: dict[int, set[int]] = {}
        self.latencies_ms: list[float] = []
        self.expected = 0
        self.outstanding = 0
        self.all_done = asyncio.Event()

    def body(self, seq: int) -> str:
        return f"{self.prefix} {seq}"

    def parse(self, event: dict[str, Any]) -> int | None:
        if event.get("type") != "m.room.message":
            return None
        body = (event.get("content") or {}).get("body")
        if not isinstance(body, str) or not body.startswith(self.prefix + " "):
            return None
        tail = body[len(self.prefix) + 1:]
        return int(tail) if tail.isdigit() else None

    def expect(self, seq: int, started: float, receivers: set[int]) -> None:
        self.sent_at[seq] = started
        self.pending[seq] = set(receivers)
        self.expected += len(receivers)
        self.outstanding += len(receivers)
        self.all_done.clear()

    def cancel(self, seq: int) -> None:
        """A send failed: nobody is expected to receive it."""
        left = self.pending.pop(seq, set())
        self.expected -= len(left)
        self.outstanding -= len(left)
        if self.outstanding == 0:
            self.all_done.set()

    def seen(self, seq: int, receiver: int, at: float) -> None:
        waiting = self.pending.get(seq)
        if waiting is None or receiver not in waiting:
            return
        waiting.remove(receiver)
        self.latencies_ms.append((at - self.sent_at[seq]) * 1000)
        self.outstanding -= 1
        if self.outstanding == 0:
            self.all_done.set()


async def bounded(items: list[Any], concurrency: int,
                  work: Callable[[Any], Awaitable[object]]) -> tuple[list[float], int, str]:
    """Run ``work`` on every item, ``concurrency`` at a time; (latencies ms, errors, first error).

    ``work`` returns ``SKIPPED`` for an item it did not do (a time bound was reached).
    """
    queue = list(reversed(items))
    latencies: list[float] = []
    errors = 0
    first_error = ""

    async def worker() -> None:
        nonlocal errors, first_error
        while queue:
            item = queue.pop()
            started = now()
            try:
                outcome = await work(item)
            except (ApiError, httpx.HTTPError, KeyError, ValueError) as exc:
                errors += 1
                first_error = first_error or f"{type(exc).__name__}: {exc}"
                continue
            if outcome is not SKIPPED:
                latencies.append((now() - started) * 1000)

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return latencies, errors, first_error


class LoadRun:
    """All phases against one target; ``run()`` returns the results, never raises."""

    def __init__(self, target: Target, size: Size, size_name: str = "custom",
                 time_limit_s: float = 600.0) -> None:
        self.target = target
        self.size = size
        self.run_id = secrets.token_hex(3)
        self.deadline = time.monotonic() + time_limit_s
        self.stats = Stats()
        self.users: list[User] = []
        self.room_ids: list[str] = []
        self.members: list[list[int]] = []
        self.sent_per_room: dict[int, int] = {}
        self.initial_prev_batch: dict[str, str] = {}
        self.initial_seen: dict[str, set[int]] = {}
        self.delivery = Delivery(f"bench {self.run_id}")
        self.https: list[httpx.AsyncClient] = []
        self.result = RunResult(target.name, size_name, size, "h2c" if target.http2 else "http/1.1")

    # ------------------------------------------------------------------ plumbing
    def remaining(self) -> float:
        return self.deadline - time.monotonic()

    def new_client(self, max_connections: int | None = None) -> MatrixClient:
        http = make_http(self.target.base_url, http2=self.target.http2,
                         max_connections=max_connections)
        self.https.append(http)
        return MatrixClient(http, self.stats)

    async def run(self) -> RunResult:
        steps: list[tuple[str, Callable[[], Awaitable[list[PhaseResult]]]]] = [
            ("ceiling", self.ceiling),
            ("register", self.register_and_login),
            ("rooms", self.rooms),
            ("send", self.send_and_deliver),
            ("initial_sync", self.initial_sync),
            ("messages", self.pagination),
            ("idle_longpolls", self.idle),
        ]
        try:
            for name, step in steps:
                if self.remaining() <= 0:
                    self.result.phases.append(PhaseResult(name, ok=False, error="time limit reached"))
                    break
                log(f"{self.target.name}: {name}")
                started = now()
                try:
                    # Phases bound themselves; this only stops one that hangs.
                    results = await asyncio.wait_for(step(), timeout=self.remaining() + 60)
                except (PhaseFailed, ApiError, httpx.HTTPError, KeyError, ValueError,
                        TimeoutError) as exc:
                    message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                    self.result.phases.append(PhaseResult(name, seconds=now() - started, ok=False,
                                                          error=message))
                    log(f"{self.target.name}: {name} FAILED: {message}")
                    break
                for result in results:
                    self.result.phases.append(result)
                    log(f"{self.target.name}:   {json.dumps(result.to_json(self.target.name))}")
                if any(not r.ok and r.phase in BLOCKING for r in results):
                    break  # later phases need every user and every room
        finally:
            await asyncio.gather(*(http.aclose() for http in self.https), return_exceptions=True)
        return self.result

    # ------------------------------------------------------------------ phases
    async def ceiling(self) -> list[PhaseResult]:
        """GET /_matrix/client/versions at the send concurrency: what the HTTP stack can do."""
        client = self.new_client(self.size.concurrency)
        await client.versions()  # warm the connection pool's first connection
        started = now()
        stop_at = started + CEILING_SECONDS

        lat: list[float] = []
        left = [self.size.ceiling_requests]
        errors, first = 0, ""

        async def worker() -> None:
            nonlocal errors, first
            while left[0] > 0 and now() < stop_at:
                left[0] -= 1
                t0 = now()
                try:
                    await client.versions()
                except (ApiError, httpx.HTTPError, ValueError) as exc:
                    errors += 1
                    first = first or f"{type(exc).__name__}: {exc}"
                    continue
                lat.append((now() - t0) * 1000)

        await asyncio.gather(*(worker() for _ in range(self.size.concurrency)))
        return [PhaseResult("ceiling", len(lat), now() - started, lat, errors, errors == 0, first,
                            {"concurrency": self.size.concurrency})]

    async def register_and_login(self) -> list[PhaseResult]:
        size = self.size
        password = f"bench-{self.run_id}-pw"
        clients = [self.new_client() for _ in range(size.users)]
        sessions: dict[int, Session] = {}

        async def register(i: int) -> None:
            sessions[i] = await clients[i].register(f"bench{self.run_id}u{i}", password)

        started = now()
        lat, errors, first = await bounded(list(range(size.users)), size.register_concurrency,
                                           register)
        reg = PhaseResult("register", len(lat), now() - started, lat, errors, errors == 0, first,
                          {"concurrency": size.register_concurrency})
        if errors:
            return [reg]

        async def login(i: int) -> None:
            sessions[i] = await clients[i].login(sessions[i].localpart, password)

        started = now()
        lat, errors, first = await bounded(list(range(size.users)), size.register_concurrency, login)
        log_in = PhaseResult("login", len(lat), now() - started, lat, errors, errors == 0, first,
                             {"concurrency": size.register_concurrency})
        self.users = [User(i, sessions[i], clients[i]) for i in range(size.users)]
        return [reg, log_in]

    async def rooms(self) -> list[PhaseResult]:
        size = self.size
        n = len(self.users)
        per_room = min(size.members, n)
        self.members = []
        for r in range(size.rooms):
            members = [(r * per_room + j) % n for j in range(per_room)]
            if 0 not in members:
                members.append(0)  # the observer is in every room
            self.members.append(members)
        self.room_ids = [""] * size.rooms

        async def create(r: int) -> None:
            creator = self.users[self.members[r][0]]
            self.room_ids[r] = await creator.client.create_room(
                creator.session, f"bench {self.run_id} room {r}")

        started = now()
        lat, errors, first = await bounded(list(range(size.rooms)), CREATE_CONCURRENCY, create)
        created = PhaseResult("create_rooms", len(lat), now() - started, lat, errors, errors == 0,
                              first)
        if errors:
            return [created]
        for r, members in enumerate(self.members):
            for m in members:
                self.users[m].rooms.append(r)
        joins = [(r, m) for r, members in enumerate(self.members) for m in members[1:]]

        async def join(item: tuple[int, int]) -> None:
            r, m = item
            user = self.users[m]
            await user.client.join(user.session, self.room_ids[r])

        started = now()
        lat, errors, first = await bounded(joins, size.concurrency, join)
        joined = PhaseResult("join", len(lat), now() - started, lat, errors, errors == 0, first,
                             {"members_per_room": per_room})
        return [created, joined]

    async def choose_filter(self, user: User, definition: dict[str, Any]) -> str:
        """A filter id from POST /user/{id}/filter, else the inline JSON form (both are spec)."""
        try:
            return await user.client.upload_filter(user.session, definition)
        except ApiError:
            return json.dumps(definition, separators=(",", ":"))

    async def prepare_sync(self) -> None:
        """Every user: a sync filter and a first (initial) sync, to long-poll from its token."""

        async def prepare(user: User) -> None:
            user.session.filter_param = await self.choose_filter(user, SYNC_FILTER)
            data = await user.client.sync(user.session, None, 0, user.session.filter_param)
            user.session.next_batch = str(data["next_batch"])

        _, errors, first = await bounded(self.users, self.size.concurrency, prepare)
        if errors:
            raise PhaseFailed(f"initial sync before sending failed: {first}")

    async def sync_loop(self, user: User, stop: asyncio.Event, counters: dict[str, int]) -> None:
        while not stop.is_set():
            try:
                data = await user.client.sync(user.session, user.session.next_batch, LONGPOLL_MS,
                                              user.session.filter_param)
            except (ApiError, httpx.HTTPError, ValueError) as exc:
                counters["sync_errors"] += 1
                if counters["sync_errors"] == 1:
                    log(f"{self.target.name}: sync error: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.5)
                continue
            arrived = now()
            user.session.next_batch = str(data.get("next_batch", user.session.next_batch))
            counters["syncs"] += 1
            counters["limited_timelines"] += limited_rooms(data)
            for _, event in timeline_events(data):
                seq = self.delivery.parse(event)
                if seq is not None:
                    self.delivery.seen(seq, user.index, arrived)

    async def send_and_deliver(self) -> list[PhaseResult]:
        """M messages at concurrency C while every user long-polls /sync."""
        size = self.size
        await self.prepare_sync()
        stop = asyncio.Event()
        counters = {"syncs": 0, "sync_errors": 0, "limited_timelines": 0}
        loops = [asyncio.create_task(self.sync_loop(u, stop, counters)) for u in self.users]
        await asyncio.sleep(0.5)  # let every long-poll reach the server
        plan = []
        for seq in range(size.messages):
            r = seq % size.rooms
            members = self.members[r]
            plan.append((seq, r, members[(seq // size.rooms) % len(members)]))

        send_until = now() + max(5.0, min(SEND_SECONDS, self.remaining() - AFTER_SEND_SECONDS))
        skipped = [0]

        async def send(item: tuple[int, int, int]) -> object:
            seq, r, sender_index = item
            if now() >= send_until:
                skipped[0] += 1
                return SKIPPED
            sender = self.users[sender_index]
            self.delivery.expect(seq, now(), set(self.members[r]) - {sender_index})
            try:
                await sender.client.send_text(sender.session, self.room_ids[r],
                                              f"t{self.run_id}-{seq}", self.delivery.body(seq))
            except BaseException:
                self.delivery.cancel(seq)
                raise
            self.sent_per_room[r] = self.sent_per_room.get(r, 0) + 1
            return None

        try:
            started = now()
            lat, errors, first = await bounded(plan, size.concurrency, send)
            sent_seconds = now() - started
            sent = sum(self.sent_per_room.values())
            send_result = PhaseResult("send", sent, sent_seconds, lat, errors, errors == 0, first,
                                      {"concurrency": size.concurrency, "planned": size.messages,
                                       "stopped_by_time_bound": skipped[0]})
            wait = min(30.0, max(0.0, self.remaining() - 5))
            if self.delivery.outstanding:
                try:
                    await asyncio.wait_for(self.delivery.all_done.wait(), timeout=wait)
                except TimeoutError:
                    pass
            delivered_seconds = now() - started
        finally:
            stop.set()
            for task in loops:
                task.cancel()
            await asyncio.gather(*loops, return_exceptions=True)
        d = self.delivery
        missing = d.outstanding
        delivery = PhaseResult(
            "delivery", len(d.latencies_ms), delivered_seconds, list(d.latencies_ms),
            counters["sync_errors"], missing == 0 and d.expected > 0,
            f"{missing} of {d.expected} deliveries missing" if missing else "",
            {"expected": d.expected, "delivered": d.expected - missing, "missing": missing,
             "syncs": counters["syncs"], "limited_timelines": counters["limited_timelines"]},
        )
        return [send_result, delivery]

    async def initial_sync(self) -> list[PhaseResult]:
        """The observer (in every room) syncs from scratch, as a client does on start-up."""
        observer = self.users[0]
        filter_param = await self.choose_filter(observer, INITIAL_SYNC_FILTER)
        lat: list[float] = []
        events = rooms = 0
        started = now()
        for _ in range(self.size.initial_syncs):
            t0 = now()
            data = await observer.client.sync(observer.session, None, 0, filter_param)
            lat.append((now() - t0) * 1000)
            joined = (data.get("rooms") or {}).get("join") or {}
            rooms, events = len(joined), len(timeline_events(data))
            for room_id, room in joined.items():
                timeline = (room or {}).get("timeline") or {}
                self.initial_prev_batch[room_id] = str(timeline.get("prev_batch") or "")
                self.initial_seen[room_id] = {
                    s for e in timeline.get("events") or []
                    if (s := self.delivery.parse(e)) is not None}
        ok = rooms >= len(self.room_ids)
        return [PhaseResult("initial_sync", len(lat), now() - started, lat, 0, ok,
                            "" if ok else f"initial sync shows {rooms} of {len(self.room_ids)} rooms",
                            {"rooms": rooms, "timeline_events": events,
                             "history_messages": sum(self.sent_per_room.values())})]

    async def pagination(self) -> list[PhaseResult]:
        """/messages backwards through the busiest rooms' whole history, limit 50 a page."""
        observer = self.users[0]
        size = self.size
        lat: list[float] = []
        events = found = expected = pages = 0
        started = now()
        for r in range(min(size.pagination_rooms, len(self.room_ids))):
            room_id = self.room_ids[r]
            seen = set(self.initial_seen.get(room_id, set()))
            token: str | None = self.initial_prev_batch.get(room_id) or None
            for _ in range(size.max_pages):
                t0 = now()
                page = await observer.client.messages(observer.session, room_id, token,
                                                      size.page_limit)
                lat.append((now() - t0) * 1000)
                pages += 1
                chunk = page.get("chunk") or []
                events += len(chunk)
                for event in chunk:
                    seq = self.delivery.parse(event)
                    if seq is not None:
                        seen.add(seq)
                end = page.get("end")
                if not chunk or not end or end == token:
                    break
                token = str(end)
            found += len(seen)
            expected += self.sent_per_room.get(r, 0)
        ok = found == expected
        return [PhaseResult("messages", pages, now() - started, lat, 0, ok,
                            "" if ok else f"pagination found {found} of {expected} messages",
                            {"events": events, "bench_messages_found": found,
                             "bench_messages_expected": expected, "page_limit": size.page_limit})]

    async def idle(self) -> list[PhaseResult]:
        return [await idle_longpolls(self)]

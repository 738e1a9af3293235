"""K idle long-polls held open: the server's memory, and a message still delivered promptly."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import httpx

from bench.load.client import ApiError, MatrixClient, now, timeline_events
from bench.load.metrics import PhaseResult

if TYPE_CHECKING:
    from bench.load.phases import LoadRun

#: Each held poll asks for a slightly different timeout, so that no server can
#: answer K polls with one shared computation (Synapse caches by request key).
HOLD_TIMEOUT_MS = 50_000
#: HTTP/2 streams per connection (Hypercorn allows 100 concurrent streams).
H2_STREAMS_PER_CONNECTION = 90
MIB = 1024 * 1024


async def sample_rss(run: LoadRun, seconds: float) -> float | None:
    """The largest server RSS (MiB) seen over ``seconds``."""
    best: int | None = None
    end = now() + seconds
    while True:
        value = run.target.rss_bytes()
        if value is not None:
            best = value if best is None else max(best, value)
        if now() >= end:
            break
        await asyncio.sleep(0.2)
    return None if best is None else best / MIB


async def idle_longpolls(run: LoadRun) -> PhaseResult:
    size = run.size
    k = size.idle_polls
    users = run.users
    probe_room = 0
    members = set(run.members[probe_room])
    sender_index = run.members[probe_room][0]
    # Polls are spread over the users round-robin; those of the probe room's members (the
    # sender's included: its other devices must see it too) wait for the probe.
    waiting = {i for i in range(k) if i % len(users) in members}
    probe_body = f"probe {run.run_id}"
    probe_sent: list[float] = []
    arrivals: dict[int, float] = {}
    counters = {"errors": 0, "early": 0, "opened": 0}
    all_arrived = asyncio.Event()
    stop = asyncio.Event()

    if run.target.http2:
        per = H2_STREAMS_PER_CONNECTION
        clients = [run.new_client(1) for _ in range((k + per - 1) // per)]
    else:
        clients = [run.new_client(None)]
    before = await sample_rss(run, 0.5)

    async def poll(i: int) -> None:
        user = users[i % len(users)]
        client: MatrixClient = clients[i // H2_STREAMS_PER_CONNECTION if run.target.http2 else 0]
        since = user.session.next_batch
        while not stop.is_set():
            counters["opened"] += 1
            try:
                data = await client.sync(user.session, since, HOLD_TIMEOUT_MS + i % 1000,
                                         user.session.filter_param)
            except (ApiError, httpx.HTTPError, ValueError):
                counters["errors"] += 1
                await asyncio.sleep(0.5)
                continue
            arrived = now()
            since = str(data.get("next_batch", since))
            got_probe = any((e.get("content") or {}).get("body") == probe_body
                            for _, e in timeline_events(data))
            if got_probe and probe_sent and i in waiting and i not in arrivals:
                arrivals[i] = arrived
                if len(arrivals) == len(waiting):
                    all_arrived.set()
                return
            if not got_probe:
                counters["early"] += 1

    held: float | None = None
    early_before_probe = 0
    started = now()
    tasks = [asyncio.create_task(poll(i)) for i in range(k)]
    try:
        # Let every poll reach the server and settle, then read the memory they hold.
        await asyncio.sleep(min(10.0, 1.5 + k / 200))
        held = await sample_rss(run, 1.5)
        early_before_probe = counters["early"]
        sender = users[sender_index]
        probe_sent.append(now())
        await sender.client.send_text(sender.session, run.room_ids[probe_room],
                                      f"p{run.run_id}", probe_body)
        if waiting:
            try:
                await asyncio.wait_for(all_arrived.wait(), timeout=min(20.0, run.remaining()))
            except TimeoutError:
                pass
    finally:
        stop.set()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in clients:
            await client.http.aclose()
    latencies = [(t - probe_sent[0]) * 1000 for t in arrivals.values()] if probe_sent else []
    missing = len(waiting) - len(arrivals)
    extra: dict[str, object] = {
        "idle_polls": k,
        "probe_receivers": len(waiting),
        "probe_delivered": len(arrivals),
        "early_returns_before_probe": early_before_probe,
    }
    if before is not None and held is not None:
        extra.update(
            rss_before_mib=round(before, 1),
            rss_held_mib=round(held, 1),
            rss_kib_per_poll=round((held - before) * 1024 / max(k, 1), 1),
        )
    ok = missing == 0 and counters["errors"] == 0
    error = ""
    if missing:
        error = f"probe reached {len(arrivals)} of {len(waiting)} held polls"
    elif counters["errors"]:
        error = f"{counters['errors']} long-poll errors"
    return PhaseResult("idle_longpolls", k, now() - started, latencies, counters["errors"], ok, error, extra)

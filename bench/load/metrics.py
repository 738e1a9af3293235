"""Sizes of a run, phase results and percentiles."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Size:
    """How much a run does; every loop of the tool is bounded by these numbers."""

    users: int
    rooms: int
    members: int  # per room (the observer, user 0, joins every room on top)
    messages: int
    concurrency: int
    idle_polls: int
    ceiling_requests: int
    initial_syncs: int
    register_concurrency: int = 8
    page_limit: int = 50
    max_pages: int = 200
    pagination_rooms: int = 3


SIZES: dict[str, Size] = {
    # CI smoke: a few seconds of work.
    "tiny": Size(users=4, rooms=2, members=3, messages=24, concurrency=4, idle_polls=16,
                 ceiling_requests=200, initial_syncs=2, register_concurrency=4),
    "small": Size(users=12, rooms=4, members=6, messages=300, concurrency=8, idle_polls=100,
                  ceiling_requests=1000, initial_syncs=3),
    # `tox -e bench`: about two to three minutes per server on a 2-core machine.
    "default": Size(users=32, rooms=8, members=8, messages=1500, concurrency=16,
                    idle_polls=500, ceiling_requests=4000, initial_syncs=5),
}


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass
class PhaseResult:
    """One phase of one run: a count, a wall time, per-operation latencies and extras."""

    phase: str
    count: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)
    errors: int = 0
    ok: bool = True
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def rate_per_s(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    def to_json(self, server: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "bench": "load",
            "server": server,
            "phase": self.phase,
            "ok": self.ok,
            "count": self.count,
            "seconds": round(self.seconds, 3),
            "rate_per_s": round(self.rate_per_s, 1),
            "errors": self.errors,
        }
        if self.latencies_ms:
            out.update(
                p50_ms=round(self.pct(50), 2),
                p95_ms=round(self.pct(95), 2),
                p99_ms=round(self.pct(99), 2),
                max_ms=round(max(self.latencies_ms), 2),
            )
        if self.error:
            out["error"] = self.error
        out.update(self.extra)
        return out


@dataclass
class RunResult:
    """Every phase of one server's run, plus what describes the run."""

    server: str
    size_name: str
    size: Size
    http: str
    phases: list[PhaseResult] = field(default_factory=list)
    skipped: str = ""

    def phase(self, name: str) -> PhaseResult | None:
        for result in self.phases:
            if result.phase == name:
                return result
        return None

    @property
    def ok(self) -> bool:
        return not self.skipped and all(p.ok for p in self.phases)

    def headline(self) -> dict[str, float | None]:
        """The figures the README compares, by metric name (None when not measured)."""

        def get(phase: str, attr: str) -> float | None:
            result = self.phase(phase)
            if result is None or result.count == 0:
                return None  # a phase with errors still shows what it measured (flagged by `!`)
            if attr == "rate":
                return result.rate_per_s
            if attr.startswith("p"):
                return result.pct(float(attr[1:])) if result.latencies_ms else None
            value = result.extra.get(attr)
            return float(value) if isinstance(value, (int, float)) else None

        return {
            "ceiling_req_per_s": get("ceiling", "rate"),
            "register_per_s": get("register", "rate"),
            "login_per_s": get("login", "rate"),
            "create_room_p50_ms": get("create_rooms", "p50"),
            "join_p50_ms": get("join", "p50"),
            "send_msgs_per_s": get("send", "rate"),
            "send_p50_ms": get("send", "p50"),
            "send_p95_ms": get("send", "p95"),
            "send_p99_ms": get("send", "p99"),
            "delivery_p50_ms": get("delivery", "p50"),
            "delivery_p99_ms": get("delivery", "p99"),
            "initial_sync_p50_ms": get("initial_sync", "p50"),
            "messages_page_p50_ms": get("messages", "p50"),
            "messages_page_p99_ms": get("messages", "p99"),
            "idle_rss_mib": get("idle_longpolls", "rss_held_mib"),
            "idle_kib_per_poll": get("idle_longpolls", "rss_kib_per_poll"),
            "idle_probe_p50_ms": get("idle_longpolls", "p50"),
            "idle_probe_max_ms": get("idle_longpolls", "p100"),
        }

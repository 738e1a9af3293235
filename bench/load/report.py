"""The readable table, the Parley/Synapse ratios and the JSON lines of a run."""

from __future__ import annotations

import json
from typing import Any

from bench.load.metrics import RunResult

#: (metric, label, format) in table order.
ROWS: list[tuple[str, str, str]] = [
    ("ceiling_req_per_s", "ceiling GET /versions (req/s)", "{:.0f}"),
    ("register_per_s", "register (users/s)", "{:.1f}"),
    ("login_per_s", "login (logins/s)", "{:.1f}"),
    ("create_room_p50_ms", "createRoom p50 (ms)", "{:.1f}"),
    ("join_p50_ms", "join p50 (ms)", "{:.1f}"),
    ("send_msgs_per_s", "send throughput (msgs/s)", "{:.1f}"),
    ("send_fraction_of_ceiling", "send / ceiling", "{:.3f}"),
    ("send_p50_ms", "send latency p50 (ms)", "{:.1f}"),
    ("send_p95_ms", "send latency p95 (ms)", "{:.1f}"),
    ("send_p99_ms", "send latency p99 (ms)", "{:.1f}"),
    ("delivery_p50_ms", "delivery send->/sync p50 (ms)", "{:.1f}"),
    ("delivery_p99_ms", "delivery send->/sync p99 (ms)", "{:.1f}"),
    ("initial_sync_p50_ms", "initial sync p50 (ms)", "{:.1f}"),
    ("messages_page_p50_ms", "/messages page p50 (ms)", "{:.1f}"),
    ("messages_page_p99_ms", "/messages page p99 (ms)", "{:.1f}"),
    ("idle_rss_mib", "RSS with K idle polls (MiB)", "{:.1f}"),
    ("idle_kib_per_poll", "RSS per idle poll (KiB)", "{:.1f}"),
    ("idle_probe_p50_ms", "probe delivery, K held, p50 (ms)", "{:.1f}"),
    ("idle_probe_max_ms", "probe delivery, K held, max (ms)", "{:.1f}"),
]

#: The ratios the README quotes: (metric, label, "higher" or "lower" is better).
RATIOS: list[tuple[str, str, str]] = [
    ("send_msgs_per_s", "send throughput", "higher"),
    ("delivery_p50_ms", "delivery latency p50", "lower"),
    ("delivery_p99_ms", "delivery latency p99", "lower"),
    ("initial_sync_p50_ms", "initial sync time", "lower"),
    ("idle_rss_mib", "memory with K idle long-polls", "lower"),
    ("ceiling_req_per_s", "ceiling (trivial endpoint)", "higher"),
]


def metrics(run: RunResult) -> dict[str, float | None]:
    values = run.headline()
    send, ceiling = values.get("send_msgs_per_s"), values.get("ceiling_req_per_s")
    values["send_fraction_of_ceiling"] = send / ceiling if send and ceiling else None
    return values


def table(runs: list[RunResult]) -> str:
    shown = [r for r in runs if not r.skipped]
    width = 34
    col = max([16] + [len(r.server) + 2 for r in shown])
    lines = []
    if shown:
        size = shown[0].size
        lines.append(
            f"size {shown[0].size_name}: N={size.users} users, R={size.rooms} rooms x "
            f"{size.members} members (+observer), M={size.messages} messages at C="
            f"{size.concurrency}, K={size.idle_polls} idle long-polls, {shown[0].http}")
        lines.append(f"{'metric':{width}}" + "".join(f"{r.server:>{col}}" for r in shown))
        values = [metrics(r) for r in shown]
        for key, label, fmt in ROWS:
            cells = []
            for v in values:
                x = v.get(key)
                cells.append(f"{fmt.format(x) if x is not None else '-':>{col}}")
            lines.append(f"{label:{width}}" + "".join(cells))
        for r in shown:
            for phase in r.phases:
                if not phase.ok:
                    lines.append(f"! {r.server} {phase.phase}: {phase.error}")
    for r in runs:
        if r.skipped:
            lines.append(f"- {r.server} skipped: {r.skipped}")
    return "\n".join(lines)


def ratios(runs: list[RunResult]) -> list[dict[str, Any]]:
    """Parley/Synapse for every Parley run, when Synapse ran in the same invocation."""
    synapse = next((r for r in runs if r.server.startswith("synapse") and not r.skipped), None)
    if synapse is None:
        return []
    base = metrics(synapse)
    out = []
    for run in runs:
        if run is synapse or run.skipped or not run.server.startswith("parley"):
            continue
        mine = metrics(run)
        for key, label, better in RATIOS:
            a, b = mine.get(key), base.get(key)
            if a is None or not b:
                continue
            out.append({"bench": "load_ratio", "server": run.server, "versus": synapse.server,
                        "metric": key, "label": label, "better": better,
                        "ratio": round(a / b, 3)})
    return out


def ratio_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return ""
    lines = ["ratio Parley/Synapse (for times and memory < 1 means Parley is better; "
             "for throughput > 1 does)"]
    for row in rows:
        lines.append(f"  {row['server']:>14} / {row['versus']}: {row['label']:32} "
                     f"{row['ratio']:8.2f}  ({row['better']} is better)")
    return "\n".join(lines)


def json_lines(runs: list[RunResult], ratio_rows: list[dict[str, Any]]) -> list[str]:
    out = []
    for run in runs:
        if run.skipped:
            out.append(json.dumps({"bench": "load", "server": run.server, "skipped": run.skipped}))
            continue
        for phase in run.phases:
            out.append(json.dumps(phase.to_json(run.server), sort_keys=True))
    out.extend(json.dumps(row, sort_keys=True) for row in ratio_rows)
    return out

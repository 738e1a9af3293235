"""The load bench at its tiny size against Parley: every phase completes, every message arrives.

Nothing here is timed: the bench measures speed, these tests only check that
its phases run to the end and that delivery, pagination and the probe through
the idle long-polls are complete.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bench.load.metrics import SIZES
from bench.load.phases import LoadRun, Target
from bench.load.servers import tree_rss_bytes
from tests.support.server import RunningServer

REPO = Path(__file__).resolve().parents[2]
PHASES = ["ceiling", "register", "login", "create_rooms", "join", "send", "delivery",
          "initial_sync", "messages", "idle_longpolls"]


async def test_every_phase_completes_and_every_message_is_delivered(server: RunningServer) -> None:
    target = Target("parley", server.base_url, rss_bytes=lambda: tree_rss_bytes(os.getpid()))
    size = SIZES["tiny"]
    result = await LoadRun(target, size, "tiny", time_limit_s=600).run()

    assert [p.phase for p in result.phases] == PHASES, [p.to_json("x") for p in result.phases]
    failed = [p.to_json("parley") for p in result.phases if not p.ok]
    assert failed == []
    by_name = {p.phase: p for p in result.phases}
    assert by_name["register"].count == size.users
    assert by_name["send"].count == size.messages
    delivery = by_name["delivery"]
    assert delivery.extra["missing"] == 0
    assert delivery.extra["delivered"] == delivery.extra["expected"] > 0
    assert len(delivery.latencies_ms) == delivery.extra["expected"]
    pages = by_name["messages"]
    assert pages.extra["bench_messages_found"] == pages.extra["bench_messages_expected"] > 0
    assert by_name["initial_sync"].extra["rooms"] >= size.rooms
    idle = by_name["idle_longpolls"]
    assert idle.extra["probe_delivered"] == idle.extra["probe_receivers"] > 0
    assert idle.extra["rss_held_mib"] > 0


def test_command_line_runs_a_parley_process_and_prints_json_lines(tmp_path: Path) -> None:
    backend = os.environ.get("PARLEY_TEST_DB", "sqlite")
    name = "parley-mysql" if backend == "mysql" else "parley-sqlite"
    args = [sys.executable, "-m", "bench.load", "--size", "tiny", "--servers", name,
            "--no-install-synapse", "--json-out", str(tmp_path / "out.jsonl")]
    if backend == "mysql":
        args += ["--mysql-url", os.environ.get("PARLEY_TEST_MYSQL_URL", "mysql://root:@127.0.0.1:3306")]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    assert "send throughput (msgs/s)" in done.stdout  # the readable table
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["phase"] for row in lines] == PHASES
    assert all(row["ok"] and row["server"] == name for row in lines)
    delivery = next(row for row in lines if row["phase"] == "delivery")
    assert delivery["delivered"] == delivery["expected"] > 0
    printed = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert printed == lines

"""The desktop client's own figures (``python -m bench.client``; needs a display or Xvfb).

Each scenario runs in a fresh process (so memory and start-up are its own):

* ``cold_start_s``: from spawning ``python`` to the login window drawn (median of 5).
* ``rss_mb``: resident memory of a client showing 1,000 conversations after 20,000
  messages went through it (a 2,000-message chat open, 18,000 arriving in the others).
* ``stall_arrive_ms``: the longest gap of a 5 ms ``after`` probe on the Tk loop while
  2,000 messages arrive (through the bridge queue, as the worker posts them).
* ``stall_open_ms``: the same while a chat with 2,000 messages opens.
* ``open_chat_ms``: clicking a conversation among 1,000 until its view is drawn with its
  (50-message) history.
* ``bare_tk_ms``: the probe's longest gap in a bare Tk window doing nothing: the floor.

Run from the repository root::

    python -m bench.client               # 3 runs, a table and one JSON line per run
    python -m bench.client --runs 1

The client side is measured without a homeserver: the events are the ones the worker
posts (``RoomsSnapshot``, ``MessageReceived``, ``HistoryLoaded``), built in the process.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GOALS = {"cold_start_s": 1.5, "rss_mb": 120.0, "stall_arrive_ms": 50.0, "stall_open_ms": 50.0,
         "open_chat_ms": 200.0}

COLD = """
import sys, time
from pathlib import Path
from client_tk.app import ParleyApp
app = ParleyApp(data_dir=Path(sys.argv[1]))
app.window.update()
print("ready", flush=True)
app.close()
"""


def _run(code: str, *args: str, timeout: float = 600) -> dict[str, float]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"scenario failed: {done.stderr[-2000:]}")
    line = next(x for x in reversed(done.stdout.splitlines()) if x.startswith("{"))
    return dict(json.loads(line))


def cold_start(tmp: Path, times: int = 5) -> float:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    samples = []
    for i in range(times):
        began = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-c", COLD, str(tmp / f"cold{i}")], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            if line.strip() == "ready":
                samples.append(time.perf_counter() - began)
                break
        proc.wait(60)
    return statistics.median(samples)


def one_run(tmp: Path) -> dict[str, float]:
    result = {"cold_start_s": round(cold_start(tmp), 3)}
    scenario = str(Path(__file__).with_name("client_scenarios.py"))
    code = f"import runpy, sys; sys.argv = [{scenario!r}] + sys.argv[1:]; runpy.run_path({scenario!r}, run_name='__main__')"
    for name in ("rss", "arrive", "open", "click", "bare"):
        result.update(_run(code, name, str(tmp / name)))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.client", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if not os.environ.get("DISPLAY"):
        print("no DISPLAY: start Xvfb (Xvfb :99 & export DISPLAY=:99)", file=sys.stderr)
        return 2
    runs = []
    tmp = Path(tempfile.mkdtemp(prefix="parley-bench-client-"))
    try:
        for i in range(args.runs):
            run = one_run(tmp / f"run{i}")
            runs.append(run)
            print(json.dumps({"bench": "client", "run": i + 1, **run}), flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"\n{'figure':18} {'goal':>8} " + " ".join(f"{'run ' + str(i + 1):>9}" for i in range(len(runs))))
    for key, goal in {**GOALS, "bare_tk_ms": 0.0}.items():
        values = " ".join(f"{r[key]:>9.3g}" for r in runs)
        print(f"{key:18} {('< ' + format(goal, 'g')) if goal else '':>8} {values}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

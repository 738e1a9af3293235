"""``python -m bench.load``: the same load against Parley (SQLite, MariaDB) and Synapse.

Examples::

    python -m bench.load                                  # default size, all servers
    python -m bench.load --size tiny --servers parley-sqlite
    python -m bench.load --target http://127.0.0.1:8008   # any running homeserver
    python -m bench.load --servers parley-sqlite --http2  # h2c for Parley

Prints progress on stderr, then the table, the Parley/Synapse ratios and one
JSON object per line (``{"bench": "load", ...}``) on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import resource
import sys
import time
from pathlib import Path

from bench.load.metrics import SIZES, RunResult
from bench.load.phases import LoadRun, Target, log
from bench.load.report import json_lines, ratio_table, ratios, table
from bench.load.servers import (
    DEFAULT_MYSQL_URL,
    ParleyServer,
    ServerProcess,
    SynapseServer,
    find_synapse_python,
    tree_rss_bytes,
    workdir,
)

ALL_SERVERS = ("parley-sqlite", "parley-mysql", "synapse")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.load",
                                     description="Matrix C-S API load tool")
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--servers", default=",".join(ALL_SERVERS),
                        help=f"comma-separated, from {', '.join(ALL_SERVERS)}")
    parser.add_argument("--target", help="URL of an already running homeserver (no servers started)")
    parser.add_argument("--target-pid", type=int, help="its process id, to read its memory")
    parser.add_argument("--http2", action="store_true", help="h2c to Parley (Synapse stays HTTP/1.1)")
    parser.add_argument("--mysql-url", default=DEFAULT_MYSQL_URL,
                        help="MariaDB server for parley-mysql (a database is created and dropped)")
    parser.add_argument("--synapse-python", help="interpreter with matrix-synapse installed")
    parser.add_argument("--no-install-synapse", action="store_true",
                        help="skip Synapse instead of installing it into ~/.cache/parley-bench/synapse-venv")
    parser.add_argument("--time-limit", type=float, default=240.0,
                        help="seconds per server for all phases (default 240); the send phase "
                        "stops early to keep to it")
    parser.add_argument("--json-out", type=Path, help="also write the JSON lines to this file")
    for name in ("users", "rooms", "members", "messages", "concurrency", "idle_polls"):
        parser.add_argument(f"--{name.replace('_', '-')}", type=int, dest=name)
    return parser.parse_args(argv)


def raise_fd_limit() -> None:
    """K idle long-polls over HTTP/1.1 need K sockets here and in the server (which inherits)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def run_against(target: Target, args: argparse.Namespace,
                      size_name: str) -> RunResult:
    size = SIZES[args.size]
    overrides = {k: getattr(args, k) for k in ("users", "rooms", "members", "messages",
                                               "concurrency", "idle_polls")
                 if getattr(args, k) is not None}
    if overrides:
        size = dataclasses.replace(size, **overrides)
        size_name = f"{size_name}*"
    run = LoadRun(target, size, size_name, args.time_limit)
    return await run.run()


def run_server(name: str, args: argparse.Namespace) -> RunResult:
    size = SIZES[args.size]
    http2 = args.http2 and name.startswith("parley")
    server: ServerProcess
    if name == "synapse":
        python, version = find_synapse_python(args.synapse_python, not args.no_install_synapse,
                                              log=log)
        if python is None:
            log(f"synapse skipped: {version}")
            return RunResult(name, args.size, size, "http/1.1", skipped=version)
        name = f"synapse-{version}"
        server = SynapseServer(name, workdir("synapse"), python=python)
    elif name in ("parley-sqlite", "parley-mysql"):
        backend = name.removeprefix("parley-")
        server = ParleyServer(name, workdir(backend), backend=backend, mysql_url=args.mysql_url)
    else:
        raise SystemExit(f"unknown server {name!r}; choose from {', '.join(ALL_SERVERS)}")
    log(f"starting {name} (log: {server.log_path})")
    try:
        server.start()
    except Exception as exc:  # noqa: BLE001 - report any start failure as a skip
        log(f"{name} did not start: {exc}")
        return RunResult(name, args.size, size, "http/1.1", skipped=f"did not start: {exc}")
    try:
        target = Target(name, server.base_url, http2, server.rss_bytes)
        result = asyncio.run(run_against(target, args, args.size))
    finally:
        server.stop()
    failed = [p for p in result.phases if not p.ok]
    if failed:
        log(f"{name}: last lines of the server log:\n{server.log_tail(15)}")
    return result


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    raise_fd_limit()
    started = time.monotonic()
    runs: list[RunResult] = []
    if args.target:
        pid = args.target_pid
        target = Target("target", args.target.rstrip("/"), args.http2,
                        (lambda: tree_rss_bytes(pid)) if pid else (lambda: None))
        runs.append(asyncio.run(run_against(target, args, args.size)))
    else:
        for name in [s.strip() for s in args.servers.split(",") if s.strip()]:
            runs.append(run_server(name, args))
    ratio_rows = ratios(runs)
    print(table(runs))
    if ratio_rows:
        print(ratio_table(ratio_rows))
    print(f"# total {time.monotonic() - started:.0f} s, python {sys.version.split()[0]}")
    lines = json_lines(runs, ratio_rows)
    for line in lines:
        print(line)
    if args.json_out:
        args.json_out.write_text("\n".join(lines) + "\n")
    sys.stdout.flush()
    # Synapse may be skipped (not installable); a Parley server that does not start is a failure.
    return 0 if all(r.ok or (r.skipped and r.server == "synapse") for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())

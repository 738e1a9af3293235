"""Mutation testing (cosmic-ray) of the modules that decide security and delivery: ``tox -e mutation``.

    python -m tests.mutation [--modules event_auth,sync] [--sample N] [--seed S]

Each module is mutated in a scratch copy of the repository (never in place),
and each mutant runs the tests that cover that module (SQLite), stopping at
the first failure.  ``--sample N`` runs a seeded random sample of N mutants
per module (0 = all), so a bounded run gives an unbiased estimate.  The score
is killed / (killed + survived); mutants that time out count as killed (a
wake-up or loop broken so that a test hangs), ones that cannot even be
imported are reported apart.  Survivors' diffs go to
``artifacts/mutation/<module>.txt``.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "mutation"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Target:
    files: tuple[str, ...]
    tests: tuple[str, ...]


TARGETS: dict[str, Target] = {
    "event_auth": Target(("homeserver/services/event_auth.py",),
                         ("tests/homeserver/test_room_authorization.py", "tests/homeserver/test_rooms.py")),
    "sync": Target(("homeserver/services/sync.py",),
                   ("tests/homeserver/test_sync_delivery.py", "tests/homeserver/test_sync.py",
                    "tests/homeserver/test_wakeups.py")),
    "to_device": Target(("homeserver/services/to_device.py",),
                        ("tests/homeserver/test_to_device.py", "tests/homeserver/test_sync_delivery.py")),
    "keys": Target(("homeserver/services/keys.py",),
                   ("tests/homeserver/test_keys.py", "tests/homeserver/test_keys_sync.py",
                    "tests/homeserver/test_keys_concurrency.py")),
    "notifier": Target(("homeserver/notifier.py",),
                       ("tests/homeserver/test_wakeups.py", "tests/homeserver/test_multi_instance.py")),
    "crypto": Target(tuple(f"common/crypto/{name}.py" for name in
                           ("double_ratchet", "x3dh", "sender_keys", "envelope", "primitives")),
                     ("tests/common",)),
}

# Operators whose mutants change a decision: comparisons, boolean logic,
# constants, loops, exceptions, +/- on positions.  The rest (bit operators,
# variable insertion, decorator removal) are almost all type errors or
# equivalent mutants.
KEEP_BINARY = ("Add_Sub", "Sub_Add")
EXCLUDE = [
    r"core/ReplaceBinaryOperator_(?!(" + "|".join(KEEP_BINARY) + r")$).*",
    r"core/VariableInserter.*",
    r"core/VariableReplacer.*",
    r"core/RemoveDecorator.*",
    r"core/ReplaceUnaryOperator.*",
]


def _copy_repository(into: Path) -> None:
    listed = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, check=True, capture_output=True, text=True).stdout.split("\n")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            target = into / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def _test_command(tests: tuple[str, ...]) -> str:
    return f"{sys.executable} -m pytest -x -q -p no:cacheprovider -n 2 {' '.join(tests)}"


def _config(path: Path, module: str, tests: tuple[str, ...], timeout_s: float) -> None:
    command = _test_command(tests)
    exclude = ", ".join(f"'{pattern}'" for pattern in EXCLUDE)
    path.write_text(
        "[cosmic-ray]\n"
        f'module-path = "{module}"\n'
        f"timeout = {timeout_s}\n"
        "excluded-modules = []\n"
        f'test-command = "{command}"\n'
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{exclude}]\n"
    )


def _sample(session: Path, keep: int, seed: int) -> tuple[int, int]:
    """Mark all but a seeded sample of ``keep`` pending mutants as skipped; return (run, all)."""
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session)) as db:
        pending = sorted(item.job_id for item in db.pending_work_items)
        chosen = set(pending if keep <= 0 or keep >= len(pending) else random.Random(seed).sample(pending, keep))
        for job_id in pending:
            if job_id not in chosen:
                db.set_result(job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED, output="not sampled"))
        return len(chosen), len(pending)


def _results(session: Path) -> tuple[int, int, int, list[str]]:
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    killed = survived = incompetent = 0
    survivors: list[str] = []
    with use_db(str(session)) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            if result.test_outcome == TestOutcome.KILLED:  # a timeout counts as killed
                killed += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                survived += 1
                survivors.append(result.diff or f"{item.mutations}")
            else:
                incompetent += 1
    return killed, survived, incompetent, survivors


def run_target(name: str, target: Target, sample: int, seed: int, timeout_s: float
               ) -> tuple[int, int, int, int]:
    scratch = Path(tempfile.mkdtemp(prefix=f"parley-mutation-{name}-"))
    try:
        _copy_repository(scratch)
        env = {**os.environ, "PYTHONPATH": str(scratch), "PARLEY_TEST_DB": "sqlite"}
        baseline = subprocess.run(_test_command(target.tests).split(), cwd=scratch, env=env)
        if baseline.returncode != 0:
            raise SystemExit(f"[mutation] {name}: the tests fail without any mutation; fix them first")
        totals = [0, 0, 0]
        population = 0
        survivors: list[str] = []
        per_file = max(1, sample // len(target.files)) if sample > 0 else 0
        for index, module in enumerate(target.files):
            config, session = scratch / f"cr-{index}.toml", scratch / f"cr-{index}.sqlite"
            _config(config, module, target.tests, timeout_s)
            subprocess.run([str(BIN / "cosmic-ray"), "init", str(config), str(session)],
                           cwd=scratch, env=env, check=True)
            subprocess.run([str(BIN / "cr-filter-operators"), str(session), str(config)],
                           cwd=scratch, env=env, check=True)
            count, available = _sample(session, per_file, seed)
            population += available
            print(f"[mutation] {name}: {module}: running {count} of {available} mutants", flush=True)
            subprocess.run([str(BIN / "cosmic-ray"), "exec", str(config), str(session)],
                           cwd=scratch, env=env, check=True)
            killed, survived, incompetent, diffs = _results(session)
            totals = [totals[0] + killed, totals[1] + survived, totals[2] + incompetent]
            survivors += diffs
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / f"{name}.txt").write_text("\n\n".join(survivors) or "no survivors\n")
        return totals[0], totals[1], totals[2], population
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("--modules", default=",".join(TARGETS), help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--sample", type=int, default=20, help="mutants per module (0 = all)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per mutant's test run")
    args = parser.parse_args(argv)
    rows = []
    for name in args.modules.split(","):
        killed, survived, incompetent, population = run_target(
            name, TARGETS[name], args.sample, args.seed, args.timeout)
        rows.append((name, population, killed, survived, incompetent))
        print(f"[mutation] {name}: killed {killed}, survived {survived}, not runnable {incompetent}", flush=True)
    print("\n| module | mutants (after filter) | run | killed | survived | not runnable | score |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, population, killed, survived, incompetent in rows:
        run = killed + survived
        score = f"{100 * killed / run:.0f} %" if run else "-"
        print(f"| {name} | {population} | {run + incompetent} | {killed} | {survived} | {incompetent} | {score} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

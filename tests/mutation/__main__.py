"""Mutation testing (cosmic-ray) of the modules that decide security and delivery: ``tox -e mutation``.

    python -m tests.mutation [--modules event_auth,sync] [--workers 2] [--resume | --survivors] [--report]

For each module: the repository is copied to scratch folders (never mutated in
place); its tests run once under coverage with one context per test (this is
also the baseline: it must pass); cosmic-ray lists the mutants; each mutant
then runs, in a warm worker that forks per mutant, only the tests that executed
the mutated statement, most frequent killers first, ``-x``, with a timeout of
30 s + 3x those tests' baseline time.  A timeout counts as killed (a loop or
wake-up broken so that a test hangs); a mutant no test executes survives
without running.  Mutants shown equivalent are excluded with their reason
(``tests/mutation/equivalent.py``).  Score = killed / (killed + survived).

The cosmic-ray session of each module is kept in ``artifacts/mutation/<module>.sqlite``
(``cr-report`` reads it); ``--resume`` continues it while the mutated files are
unchanged; a fresh session after an edit keeps the kills of mutants whose diff
(with its context lines) is unchanged.  Survivors' diffs: ``artifacts/mutation/<module>.txt``.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import json
import math
import os
import queue
import random
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from tests.mutation.equivalent import EQUIVALENT
from tests.mutation.select import CoverageMap
from tests.mutation.targets import TARGETS, Target

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts" / "mutation"
BIN = Path(sys.executable).parent

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


def _env(scratch: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("PARLEY_MUTATION")}
    return {**env, "PYTHONPATH": str(scratch), "PARLEY_TEST_DB": "sqlite"}


def _config(path: Path, files: tuple[str, ...]) -> None:
    exclude = ", ".join(f"'{pattern}'" for pattern in EXCLUDE)
    modules = ", ".join(f'"{name}"' for name in files)
    path.write_text(
        "[cosmic-ray]\n"
        f"module-path = [{modules}]\n"
        "timeout = 600\n"
        "excluded-modules = []\n"
        'test-command = "false"\n'  # unused: tests.mutation runs the tests itself
        "[cosmic-ray.distributor]\n"
        'name = "local"\n'
        "[cosmic-ray.filters.operators-filter]\n"
        f"exclude-operators = [{exclude}]\n"
    )


def _fingerprint(target: Target) -> str:
    digest = hashlib.sha256()
    for name in (*target.files, "tests/mutation/targets.py"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def _measure_coverage(name: str, target: Target, scratch: Path) -> CoverageMap:
    data_dir = scratch / ".mutation-coverage"
    data_dir.mkdir()
    env = {**_env(scratch), "PARLEY_MUTATION_COVER": os.pathsep.join(str(scratch / f) for f in target.files),
           "PARLEY_MUTATION_COVER_DATA": str(data_dir / "coverage")}
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "tests.mutation.cover",
               "-n", "2", *target.tests]
    print(f"[mutation] {name}: baseline and coverage: {' '.join(command[2:])}", flush=True)
    if subprocess.run(command, cwd=scratch, env=env).returncode != 0:
        raise SystemExit(f"[mutation] {name}: the tests fail without any mutation; fix them first")
    return CoverageMap.collect(data_dir, scratch, target.files)


def _run_before(session: Path) -> tuple[dict[str, Any], list[str]]:
    """The kept session's killed mutants and its survivors that ran, by diff: a mutant whose diff
    (with its context) is unchanged after an edit elsewhere was killed by tests that still exist;
    the survivors run first in the new session, so a budgeted sample keeps every mutant it had
    (carrying only the kills would bias the estimate upwards)."""
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import TestOutcome

    if not session.exists():
        return {}, []
    with use_db(str(session)) as db:
        done = [result for _item, result in db.completed_work_items if result.diff]
        killed = {_diff_key(r.diff): r for r in done if r.test_outcome == TestOutcome.KILLED}
        survived = [_diff_key(r.diff) for r in done if r.test_outcome == TestOutcome.SURVIVED
                    and not (r.output or "").startswith("no test")]
        return killed, survived


def _diff_key(diff: str) -> str:
    """A diff without its line numbers: the same mutant after lines moved above it."""
    return "\n".join(line for line in diff.splitlines() if not line.startswith("@@"))


def _init_session(target: Target, scratch: Path, session: Path) -> None:
    config = scratch / "cosmic-ray.toml"
    _config(config, target.files)
    carried, survived = _run_before(session)
    (session.parent / f"{session.stem}.carried.json").write_text(
        json.dumps({"killed": {diff: result.output for diff, result in carried.items()}, "survived": survived}))
    session.unlink(missing_ok=True)
    subprocess.run([str(BIN / "cosmic-ray"), "init", str(config), str(session)], cwd=scratch, check=True,
                   env=_env(scratch))
    subprocess.run([str(BIN / "cr-filter-operators"), str(session), str(config)], cwd=scratch, check=True,
                   env=_env(scratch))


class Worker:
    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.process = subprocess.Popen([sys.executable, "-m", "tests.mutation.worker"], cwd=scratch,
                                        env=_env(scratch), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        if not json.loads(self.process.stdout.readline() or "{}").get("ready"):
            raise SystemExit("[mutation] a worker failed to start")

    def run(self, job: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None and self.process.stdout is not None
        job = {**job, "path": str(self.scratch / job["path"])}
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait()


def _diff(name: str, before: str, after: str) -> str:
    return "".join(difflib.unified_diff(before.splitlines(True), after.splitlines(True), name, name, n=1))


def _plan(session: Path, cover: CoverageMap, sample: int, seed: int, rerun: bool) -> tuple[list[dict[str, Any]], int]:
    """Jobs for the pending mutants (and the survivors if ``rerun``); equivalent, uncovered and unsampled
    ones are settled at once."""
    from cosmic_ray.mutating import mutate_code
    from cosmic_ray.plugins import get_operator
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    jobs: list[dict[str, Any]] = []
    settled = 0
    carried_file = session.parent / f"{session.stem}.carried.json"
    before: dict[str, Any] = json.loads(carried_file.read_text()) if carried_file.exists() else {}
    carried: dict[str, str] = before.get("killed", {})
    survived_before = set(before.get("survived", []))
    carried_file.unlink(missing_ok=True)
    sources: dict[str, str] = {}
    with use_db(str(session)) as db:
        pending = sorted(db.pending_work_items, key=lambda item: item.job_id)
        if rerun:  # the survivors first: they are what the new tests are for
            pending = [item for item, result in db.completed_work_items
                       if result.test_outcome == TestOutcome.SURVIVED] + pending
        chosen = {item.job_id for item in pending}
        if 0 < sample < len(pending):
            chosen = set(random.Random(seed).sample(sorted(chosen), sample))
        for item in pending:
            spec = item.mutations[0]
            path = str(spec.module_path)
            source = sources.setdefault(path, (ROOT / path).read_text())
            line_text = source.splitlines()[spec.start_pos[0] - 1].strip()
            key = (path, spec.definition_name or "", spec.operator_name, line_text)
            reason = EQUIVALENT.get(key)
            if item.job_id not in chosen or reason:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED,
                                                      output=f"equivalent: {reason}" if reason else "not sampled"))
                settled += 1
                continue
            mutated = mutate_code(source, get_operator(spec.operator_name)(**spec.operator_args), spec.occurrence)
            if mutated is None:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.NO_TEST))
                continue
            diff = _diff(path, source, mutated)
            after = mutated.splitlines()[spec.start_pos[0] - 1].strip()
            reason = EQUIVALENT.get((*key[:3], f"{line_text} => {after}"))
            if reason:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.SKIPPED,
                                                      output=f"equivalent: {reason}"))
                settled += 1
                continue
            if _diff_key(diff) in carried:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.NORMAL, diff=diff,
                                                      test_outcome=TestOutcome.KILLED,
                                                      output=carried.pop(_diff_key(diff))))
                settled += 1
                continue
            tests = cover.tests_for(path, source, spec.start_pos[0], spec.end_pos[0])
            if not tests:
                db.set_result(item.job_id, WorkResult(worker_outcome=WorkerOutcome.NORMAL, diff=diff,
                                                      test_outcome=TestOutcome.SURVIVED, output="no test executes it"))
                continue
            jobs.append({"job_id": item.job_id, "path": path, "code": mutated, "diff": diff,
                         "start": spec.start_pos, "end": spec.end_pos})
    jobs.sort(key=lambda job: _diff_key(job["diff"]) not in survived_before)  # stable: the rest stays random
    return jobs, settled


def _execute(name: str, jobs: list[dict[str, Any]], workers: list[Worker], cover: CoverageMap,
             session: Path, budget_s: float) -> None:
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome, WorkResult

    todo: queue.Queue[dict[str, Any]] = queue.Queue()
    for job in jobs:
        todo.put(job)
    done: queue.Queue[tuple[dict[str, Any], dict[str, Any]]] = queue.Queue()
    sources = {job["path"]: (ROOT / job["path"]).read_text() for job in jobs}

    deadline = time.monotonic() + budget_s
    stop = object()

    def serve(worker: Worker) -> None:
        while True:
            try:
                job = todo.get_nowait()
            except queue.Empty:
                job = None
            if job is None or time.monotonic() > deadline:
                done.put((stop, {}))  # type: ignore[arg-type]
                return
            tests = cover.tests_for(job["path"], sources[job["path"]], job["start"][0], job["end"][0])
            answer = worker.run({"path": job["path"], "code": job["code"], "tests": tests,
                                 "timeout": cover.timeout(tests)})
            done.put((job, answer))

    threads = [threading.Thread(target=serve, args=(worker,), daemon=True) for worker in workers]
    for thread in threads:
        thread.start()
    outcomes = {"killed": TestOutcome.KILLED, "timeout": TestOutcome.KILLED, "survived": TestOutcome.SURVIVED,
                "error": TestOutcome.INCOMPETENT}
    tally: dict[str, int] = {}
    finished = count = 0
    with use_db(str(session)) as db:
        while finished < len(threads):
            job, answer = done.get()
            if job is stop:
                finished += 1
                continue
            count += 1
            outcome = answer["outcome"]
            tally[outcome] = tally.get(outcome, 0) + 1
            if outcome == "killed":
                for line in answer["output"].splitlines():  # credit the killer so it runs first next time
                    if line.startswith(("FAILED ", "ERROR ")):
                        killer = line.split()[1]
                        cover.kills[killer] = cover.kills.get(killer, 0) + 1
            db.set_result(job["job_id"], WorkResult(worker_outcome=WorkerOutcome.NORMAL, diff=job["diff"],
                                                    test_outcome=outcomes[outcome],
                                                    output=f"{outcome}\n{answer['output']}"))
            print(f"[mutation] {name}: {count}/{len(jobs)} {outcome:8} {tally}", flush=True)
    for thread in threads:
        thread.join()


def run_target(name: str, target: Target, workers_n: int, mode: str, sample: int, seed: int,
               budget_s: float) -> None:
    """``mode``: "fresh" (a new session), "resume" (run what is pending), "survivors" (measure the tests'
    coverage again and rerun the survivors and what is pending)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    session, cover_file, stamp = (ARTIFACTS / f"{name}{suffix}" for suffix in (".sqlite", ".cover.json", ".stamp"))
    fingerprint = _fingerprint(target)
    kept = mode != "fresh" and stamp.exists() and stamp.read_text() == fingerprint and cover_file.exists()
    if mode != "fresh" and not kept:
        print(f"[mutation] {name}: the mutated files changed since the kept session: starting afresh", flush=True)
    scratches = [Path(tempfile.mkdtemp(prefix=f"parley-mutation-{name}-{i}-")) for i in range(workers_n)]
    workers: list[Worker] = []
    try:
        for scratch in scratches:
            _copy_repository(scratch)
        if not kept or mode == "survivors":
            stamp.unlink(missing_ok=True)
            cover = _measure_coverage(name, target, scratches[0])
            cover.save(cover_file)
            if not kept:
                if mode == "fresh":
                    session.unlink(missing_ok=True)
                _init_session(target, scratches[0], session)
            stamp.write_text(fingerprint)
        else:
            cover = CoverageMap.load(cover_file)
        jobs, _ = _plan(session, cover, sample, seed, rerun=kept and mode == "survivors")
        print(f"[mutation] {name}: {len(jobs)} mutants to run on {workers_n} workers", flush=True)
        workers = [Worker(scratch) for scratch in scratches]
        _execute(name, jobs, workers, cover, session, budget_s)
    finally:
        for worker in workers:
            worker.close()
        for scratch in scratches:
            shutil.rmtree(scratch, ignore_errors=True)


def report(name: str) -> dict[str, int]:
    from cosmic_ray.work_db import use_db
    from cosmic_ray.work_item import TestOutcome, WorkerOutcome

    counts = {"mutants": 0, "killed": 0, "timeout": 0, "survived": 0, "uncovered": 0, "equivalent": 0,
              "not_runnable": 0, "pending": 0}
    survivors: list[str] = []
    with use_db(str(ARTIFACTS / f"{name}.sqlite")) as db:
        counts["mutants"] = db.num_work_items
        counts["pending"] = sum(1 for _ in db.pending_work_items)
        for _item, result in db.completed_work_items:
            output = result.output or ""
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                if output.startswith("Filtered operator"):  # cr-filter-operators: not a mutant of this run
                    counts["mutants"] -= 1
                else:
                    counts["equivalent" if output.startswith("equivalent") else "pending"] += 1
            elif result.worker_outcome == WorkerOutcome.NO_TEST:
                counts["mutants"] -= 1
            elif result.test_outcome == TestOutcome.KILLED:
                counts["timeout" if output.startswith("timeout") else "killed"] += 1
            elif result.test_outcome == TestOutcome.SURVIVED:
                counts["survived"] += 1
                counts["uncovered"] += output.startswith("no test")
                survivors.append(f"{result.diff}\n# {output.splitlines()[0] if output else ''}")
            else:
                counts["not_runnable"] += 1
    (ARTIFACTS / f"{name}.txt").write_text("\n\n".join(survivors) or "no survivors\n")
    return counts


def _wilson(killed: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """The 95 % Wilson score interval of a proportion ``killed / n``."""
    p = killed / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def _score(c: dict[str, int]) -> str:
    """killed / (killed + survived); while mutants are pending, an estimate: the executed mutants
    that were run form a random sample, the unexecuted ones all survive; with its 95 % interval."""
    killed, survived = c["killed"] + c["timeout"], c["survived"]
    if killed + survived == 0:
        return "-"
    if not c["pending"]:
        return f"{100 * killed / (killed + survived):.0f} %"
    ran = killed + survived - c["uncovered"]
    executed = ran + c["pending"]
    if not ran:
        return f"est. 0 % (0 of {executed} executed mutants run)"
    share = executed / (executed + c["uncovered"])
    low, high = (share * bound for bound in _wilson(killed, ran))
    return (f"est. {100 * share * killed / ran:.0f} % (95 % CI {100 * low:.0f}-{100 * high:.0f} %;"
            f" {ran} of {executed} executed mutants run)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__.split("\n")[0])
    parser.add_argument("--modules", default=",".join(TARGETS), help="comma-separated: " + ", ".join(TARGETS))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--resume", action="store_true", help="continue the kept session if the files are unchanged")
    parser.add_argument("--survivors", action="store_true",
                        help="keep the session, measure the tests again and rerun its survivors (after adding tests)")
    parser.add_argument("--sample", type=int, default=0, help="run only a seeded sample of N mutants (0 = all)")
    parser.add_argument("--seed", type=int, default=20)
    parser.add_argument("--budget", type=float, default=0.0,
                        help="minutes per module: start no mutant after that (the rest stays pending for --resume);"
                             " the pending ones run in random order, so a partial run is a random sample")
    parser.add_argument("--report", action="store_true", help="only print the table of the kept sessions")
    args = parser.parse_args(argv)
    names = args.modules.split(",")
    if not args.report:
        for name in names:
            mode = "survivors" if args.survivors else "resume" if args.resume else "fresh"
            run_target(name, TARGETS[name], args.workers, mode, args.sample, args.seed,
                       args.budget * 60 if args.budget > 0 else float("inf"))
    print("\n| module | mutants | killed (of which timeouts) | survived (no test executes) "
          "| equivalent | not runnable | not run | score |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        c = report(name)
        score = _score(c)
        killed, survived = c["killed"] + c["timeout"], c["survived"]
        print(f"| {name} | {c['mutants']} | {killed} ({c['timeout']}) | {survived} ({c['uncovered']}) "
              f"| {c['equivalent']} | {c['not_runnable']} | {c['pending']} | {score} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

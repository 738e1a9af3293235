"""One mutation worker: a warm process in its own scratch copy that forks one child per mutant.

    python -m tests.mutation.worker      (cwd and PYTHONPATH = the scratch copy)

The parent imports pytest, its plugins and the libraries the project uses once,
then forgets the project's own modules, so each forked child imports the
project afresh, with the mutant on disk, and runs ``pytest -x`` on the tests
chosen for it.  Jobs arrive as JSON lines on stdin (``path``, ``code``,
``tests``, ``timeout``); each answer is one JSON line on stdout (``outcome``:
killed, survived, timeout or error; ``output``: the tail of pytest's report).
A child that outlives its timeout is killed with its whole process group.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PROJECT_PACKAGES = {"homeserver", "common", "client_tk", "migrations", "bench", "tests"}
WARM_IMPORTS = ("homeserver.app", "homeserver.serving", "tests.support.server", "tests.conftest",
                "tests.homeserver.room_helpers", "common.crypto", "nio")


def _warm_up() -> None:
    import pytest  # noqa: F401  (the plugins come in through their entry points)
    from _pytest.config import get_config

    get_config().pluginmanager.load_setuptools_entrypoints("pytest11")
    for name in WARM_IMPORTS:
        try:
            __import__(name)
        except ImportError:
            pass
    for name in list(sys.modules):
        if name.split(".")[0] in PROJECT_PACKAGES:
            del sys.modules[name]


def _forget_bytecode(path: Path) -> None:
    for stale in (path.parent / "__pycache__").glob(f"{path.stem}.*.pyc"):
        stale.unlink(missing_ok=True)


def _child(tests: list[str], log: str) -> None:
    os.setpgid(0, 0)
    fd = os.open(log, os.O_WRONLY | os.O_TRUNC)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    code = 3
    try:
        import pytest

        code = int(pytest.main(["-x", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
                                 "-W", "ignore::pytest.PytestAssertRewriteWarning", *tests]))
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.killpg(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


def run_job(job: dict[str, Any], log: str) -> dict[str, Any]:
    path = Path(job["path"])
    original = path.read_text()
    try:
        path.write_text(job["code"])
        _forget_bytecode(path)
        pid = os.fork()
        if pid == 0:
            _child(job["tests"], log)
        code = _wait(pid, float(job["timeout"]))
    finally:
        path.write_text(original)
        _forget_bytecode(path)
    text = Path(log).read_text(errors="replace")
    tail = "\n".join(text.splitlines()[-40:])
    if code is None:
        return {"outcome": "timeout", "output": tail}
    if code == 0:
        return {"outcome": "survived", "output": tail}
    if code in (1, 2, 3):  # failed, interrupted (an import error while collecting), internal error
        return {"outcome": "killed", "output": tail}
    if code == 4 and "ERROR collecting" in text:  # the mutant broke a test module's import: its node ids vanish
        return {"outcome": "killed", "output": tail}
    return {"outcome": "error", "output": f"pytest exit {code}\n{tail}"}


def main() -> int:
    _warm_up()
    fd, log = tempfile.mkstemp(prefix="parley-mutant-", suffix=".log")
    os.close(fd)
    try:
        print(json.dumps({"ready": True}), flush=True)
        for line in sys.stdin:
            result = run_job(json.loads(line), log)
            print(json.dumps(result), flush=True)
    finally:
        os.unlink(log)
    return 0


if __name__ == "__main__":
    sys.exit(main())

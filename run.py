#!/usr/bin/env python3
"""Bootstrap for the README's two commands; needs only Python 3.11+.

    python3 run.py serve   # homeserver on the embedded default (SQLite under ./data, localhost:8008)
    python3 run.py test    # the whole test suite through tox

It creates ``.venv`` next to this file on first use and installs what the
command needs there: ``serve`` only the server's own dependencies, ``test``
also the test, client and developer tools (pinned by ``constraints.txt``).
Extra arguments are passed on: ``python3 run.py serve --config my.toml``,
``python3 run.py test -e py -- -k login``.  Relative paths (``--config``, the
configuration's ``data_dir``) are relative to the folder you run it from.
``serve`` becomes the server process, so Ctrl-C reaches it directly and
shuts it down gracefully.

``PARLEY_RUN_PYTHON=/path/to/python`` uses that interpreter as it is (no
``.venv``, nothing installed); the tests use it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
CONSTRAINTS = ROOT / "constraints.txt"
# What each command installs into .venv (the project, with these extras).
PROFILES = {"serve": "", "test": "[test,client,dev]"}


def _stamp(profile: str) -> Path:
    return VENV / f".parley-installed-{profile}"


def _installed(profile: str) -> bool:
    """A profile is current when its stamp is newer than the files that decide it."""
    stamp = _stamp(profile)
    if not stamp.exists():
        return False
    sources = [ROOT / "pyproject.toml", CONSTRAINTS]
    return all(stamp.stat().st_mtime >= s.stat().st_mtime for s in sources if s.exists())


def ensure_venv(profile: str) -> Path:
    """The interpreter to run with, creating and filling ``.venv`` when needed."""
    override = os.environ.get("PARLEY_RUN_PYTHON")
    if override:
        return Path(override)
    python = BIN / ("python.exe" if os.name == "nt" else "python")
    if VENV.is_file():
        # A PEP 832 redirect file (older tox runs write one): .venv is ours.
        print(f"[run.py] replacing the .venv redirect file (-> {VENV.read_text().strip()}) with a venv",
              flush=True)
        VENV.unlink()
    if not python.exists():
        print("[run.py] creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    # "test" installs a superset of "serve".
    if _installed(profile) or (profile == "serve" and _installed("test")):
        return python
    print(f"[run.py] installing what `{profile}` needs into .venv "
          "(first run only; pip's progress follows) ...", flush=True)
    command = [str(python), "-m", "pip", "install", "--disable-pip-version-check",
               "--progress-bar", "on", "-e", f"{ROOT}{PROFILES[profile]}"]
    if CONSTRAINTS.exists():
        command += ["-c", str(CONSTRAINTS)]
    subprocess.check_call(command)
    _stamp(profile).touch()
    print("[run.py] done", flush=True)
    return python


def mysql_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 3306), timeout=2):
            return True
    except OSError:
        return False


def serve(python: Path, rest: list[str]) -> int:
    args = rest or ["--config", str(ROOT / "conf" / "homeserver.dev.toml")]
    command = [str(python), "-m", "homeserver", *args]
    env = dict(os.environ)
    # The caller's folder stays the working directory; the package is found
    # through the editable install, or through PYTHONPATH with PARLEY_RUN_PYTHON
    # (which the server must not see: it refuses unknown PARLEY_* settings).
    if env.pop("PARLEY_RUN_PYTHON", None):
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    sys.stdout.flush()
    if os.name == "nt":
        return subprocess.call(command, env=env)
    # Become the server: the terminal's Ctrl-C (SIGINT) and SIGTERM go to it
    # alone, and its exit status is ours.
    os.execve(command[0], command, env)
    return 0  # not reached


def test(python: Path, rest: list[str]) -> int:
    # py312/py313 run a subset; tox reports them as SKIP where the interpreter is missing.
    # federation: the interop tests with a real Synapse (installed into its own venv).
    envs = "py,lint,type,py312,py313,federation"
    if "-e" not in rest:
        if mysql_reachable():
            envs += ",mysql"
        elif os.environ.get("PARLEY_TEST_REQUIRE_MYSQL"):
            print("MariaDB is not reachable on 127.0.0.1:3306", file=sys.stderr)
            return 1
        else:
            print("note: no MariaDB on 127.0.0.1:3306, so the mysql environment is skipped")
        rest = ["-e", envs, *rest]
    tox = [str(python), "-m", "tox", "-c", str(ROOT / "tox.ini"), *rest]
    # tox passes PARLEY_* on to the tests, and the servers they start refuse unknown ones.
    env = {k: v for k, v in os.environ.items() if k != "PARLEY_RUN_PYTHON"}
    try:
        return subprocess.call(tox, cwd=ROOT, env=env)
    except KeyboardInterrupt:
        return 130


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in PROFILES:
        print(__doc__)
        return 2
    command, rest = argv[0], argv[1:]
    try:
        python = ensure_venv(command)
    except KeyboardInterrupt:
        print("\n[run.py] interrupted", file=sys.stderr)
        return 130
    except subprocess.CalledProcessError as exc:
        print(f"[run.py] installing failed (exit {exc.returncode})", file=sys.stderr)
        return 1
    if command == "serve":
        return serve(python, rest)
    return test(python, rest)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

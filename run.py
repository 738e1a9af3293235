#!/usr/bin/env python3
"""Bootstrap for the README's two commands; needs only Python 3.11+.

    python3 run.py serve   # homeserver on the embedded default (SQLite, localhost:8008)
    python3 run.py test    # the whole test suite through tox

It creates ``.venv`` next to this file on first use and installs what it needs
there (the project, its test extras and tox).  Extra arguments are passed on:
``python3 run.py serve --config my.toml``, ``python3 run.py test -e py -- -k login``.
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
STAMP = VENV / ".parley-installed"


def ensure_venv() -> Path:
    python = BIN / "python"
    if not python.exists():
        print("creating .venv ...", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    pyproject = ROOT / "pyproject.toml"
    if not STAMP.exists() or STAMP.stat().st_mtime < pyproject.stat().st_mtime:
        print("installing Parley and its dependencies into .venv ...", flush=True)
        subprocess.check_call(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check",
             "-e", f"{ROOT}[test,client,dev]"]
        )
        STAMP.touch()
    return python


def mysql_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 3306), timeout=2):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("serve", "test"):
        print(__doc__)
        return 2
    python = ensure_venv()
    command, rest = argv[0], argv[1:]
    if command == "serve":
        args = rest or ["--config", str(ROOT / "conf" / "homeserver.dev.toml")]
        return subprocess.call([str(python), "-m", "homeserver", *args], cwd=ROOT)
    envs = "py,lint,type"
    if "-e" not in rest:
        if mysql_reachable():
            envs += ",mysql"
        elif os.environ.get("PARLEY_TEST_REQUIRE_MYSQL"):
            print("MariaDB is not reachable on 127.0.0.1:3306", file=sys.stderr)
            return 1
        else:
            print("note: no MariaDB on 127.0.0.1:3306, so the mysql environment is skipped")
        rest = ["-e", envs, *rest]
    return subprocess.call([str(BIN / "tox"), "-c", str(ROOT / "tox.ini"), *rest], cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Homeservers under test, each as its own process on a free loopback port.

* Parley: ``python -m homeserver --config <generated toml>`` on SQLite (a file
  in a temporary folder) or MariaDB (a database created for the run and
  dropped after it).  Rate limits are raised, not switched off, so their
  bookkeeping is still paid.
* Synapse: ``<synapse python> -m synapse.app.homeserver -c homeserver.yaml``
  with SQLite, open registration, rate limits raised, no federation listener.
  Its interpreter comes from ``--synapse-python`` / ``PARLEY_BENCH_SYNAPSE_PYTHON``
  or a virtualenv the bench creates once (``pip install matrix-synapse``) in
``~/.cache/parley-bench/synapse-venv``.

Memory is the summed VmRSS of the server process and all its descendants.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
DEFAULT_MYSQL_URL = "mysql://root:@127.0.0.1:3306"
DEFAULT_SYNAPSE_VENV = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
                        / "parley-bench" / "synapse-venv")
HIGH = 1_000_000


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ---------------------------------------------------------------------- memory
def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out.extend(int(p) for p in fh.read().split())
    except OSError:
        pass
    return out


def _vmrss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def tree_rss_bytes(pid: int) -> int | None:
    """VmRSS of ``pid`` and every descendant (Hypercorn may fork workers), in bytes."""
    if not os.path.exists(f"/proc/{pid}/status"):
        return None
    total, stack, seen = 0, [pid], set()
    while stack:
        p = stack.pop()
        if p in seen:
            continue
        seen.add(p)
        total += _vmrss_kib(p)
        stack.extend(_children(p))
    return total * 1024


def clean_env() -> dict[str, str]:
    """The environment for a server process: without PARLEY_* (Parley reads those as settings)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_")}


# ---------------------------------------------------------------------- processes
@dataclass
class ServerProcess:
    """A homeserver subprocess; ``start()`` returns once /versions answers."""

    name: str
    workdir: Path
    port: int = field(default_factory=free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    def command(self) -> list[str]:
        raise NotImplementedError

    def cwd(self) -> Path:
        return self.workdir

    def prepare(self) -> None:
        """Write configuration, create databases: everything before the process starts."""

    def cleanup(self) -> None:
        """Drop what ``prepare`` created outside the work folder."""

    def rss_bytes(self) -> int | None:
        return tree_rss_bytes(self.process.pid) if self.process else None

    def verify(self) -> Any:
        """What ``start`` checks the server's certificate with (``httpx``'s ``verify``)."""
        return True

    def start(self, timeout: float = 90.0) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(self.command(), cwd=self.cwd(), env=clean_env(),
                                        stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=2.0, verify=self.verify()) as client:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n"
                                       f"{self.log_tail()}")
                try:
                    if client.get(self.base_url + "/_matrix/client/versions").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.name} did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        process, self.process = self.process, None
        try:
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
                    process.wait(timeout=10)
        finally:
            self.cleanup()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class ParleyServer(ServerProcess):
    backend: str = "sqlite"
    mysql_url: str = DEFAULT_MYSQL_URL
    python: str = sys.executable
    _database: str = ""

    def command(self) -> list[str]:
        return [self.python, "-m", "homeserver", "--config", str(self.workdir / "homeserver.toml")]

    def cwd(self) -> Path:
        return REPO  # so that `-m homeserver` is this checkout's server

    def prepare(self) -> None:
        if self.backend == "mysql":
            self._database = f"parley_bench_{secrets.token_hex(4)}"
            self._mysql(f"CREATE DATABASE {self._database} CHARACTER SET utf8mb4 "
                        "COLLATE utf8mb4_nopad_bin")
            url = f"{self.mysql_url}/{self._database}"
        else:
            url = f"sqlite://{(self.workdir / 'homeserver.db').as_posix()}"
        (self.workdir / "homeserver.toml").write_text(self.config_toml(url))

    def cleanup(self) -> None:
        if self._database:
            database, self._database = self._database, ""
            self._mysql(f"DROP DATABASE IF EXISTS {database}")

    def _mysql(self, sql: str) -> None:
        import pymysql

        rest = self.mysql_url.removeprefix("mysql://")
        creds, _, hostport = rest.partition("@")
        user, _, password = creds.partition(":")
        host, _, port = hostport.partition(":")
        conn = pymysql.connect(host=host, port=int(port or 3306), user=user, password=password)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
        finally:
            conn.close()

    def config_toml(self, database_url: str) -> str:
        from homeserver.config import RateLimitConfig

        limits = "\n".join(f"{f.name} = {HIGH}" for f in fields(RateLimitConfig)
                           if f.name.endswith("_per_minute"))
        return f"""# Generated by bench.load for one benchmark run.
server_name = "bench.localhost"
log_level = "WARNING"
data_dir = "{(self.workdir / 'data').as_posix()}"

[[listeners]]
host = "127.0.0.1"
port = {self.port}

[database]
url = "{database_url}"

[registration]
open = true
require_email = false

[rate_limits]
enabled = true
{limits}
"""


SYNAPSE_YAML = """\
# Generated by bench.load for one benchmark run.
server_name: "bench.localhost"
pid_file: "{dir}/homeserver.pid"
listeners:
  - port: {port}
    bind_addresses: ["127.0.0.1"]
    type: http
    tls: false
    x_forwarded: false
    resources:
      - names: [client]
        compress: false
database:
  name: sqlite3
  args:
    database: "{dir}/homeserver.db"
log_config: "{dir}/log.yaml"
media_store_path: "{dir}/media"
signing_key_path: "{dir}/signing.key"
report_stats: false
enable_registration: true
enable_registration_without_verification: true
suppress_key_server_warning: true
trusted_key_servers: []
federation_domain_whitelist: []
registration_shared_secret: "{secret}"
macaroon_secret_key: "{secret}m"
form_secret: "{secret}f"
caches:
  sync_response_cache_duration: 0
{rate_limits}
"""

SYNAPSE_LOG_YAML = """\
version: 1
formatters:
  precise:
    format: '%(asctime)s - %(name)s - %(lineno)d - %(levelname)s - %(message)s'
handlers:
  console:
    class: logging.StreamHandler
    formatter: precise
root:
  level: WARNING
  handlers: [console]
disable_existing_loggers: false
"""

_RC_SIMPLE = ["rc_message", "rc_registration", "rc_registration_token_validity",
              "rc_admin_redaction", "rc_joins_per_room", "rc_key_requests", "rc_3pid_validation",
              "rc_third_party_invite", "rc_media_create", "rc_delayed_event_mgmt",
              "rc_room_creation", "rc_reports", "rc_user_directory", "rc_profile"]
_RC_NESTED = {"rc_login": ["address", "account", "failed_attempts"],
              "rc_joins": ["local", "remote"],
              "rc_invites": ["per_room", "per_user", "per_issuer"],
              "rc_presence": ["per_user"]}


def synapse_rate_limits() -> str:
    value = f"{{per_second: {HIGH}, burst_count: {HIGH}}}"
    lines = [f"{key}: {value}" for key in _RC_SIMPLE]
    for key, subs in _RC_NESTED.items():
        lines.append(f"{key}:")
        lines.extend(f"  {sub}: {value}" for sub in subs)
    return "\n".join(lines)


@dataclass
class SynapseServer(ServerProcess):
    python: str = ""

    def command(self) -> list[str]:
        return [self.python, "-m", "synapse.app.homeserver", "-c",
                str(self.workdir / "homeserver.yaml")]

    def prepare(self) -> None:
        (self.workdir / "log.yaml").write_text(SYNAPSE_LOG_YAML)
        (self.workdir / "homeserver.yaml").write_text(SYNAPSE_YAML.format(
            dir=self.workdir.as_posix(), port=self.port, secret=secrets.token_hex(16),
            rate_limits=synapse_rate_limits()))
        subprocess.run(self.command() + ["--generate-keys"], cwd=self.workdir, env=clean_env(),
                       check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                       timeout=120)


def find_synapse_python(explicit: str | None, install: bool, venv: Path = DEFAULT_SYNAPSE_VENV,
                        log: Any = print, requirement: str = "matrix-synapse") -> tuple[str | None, str]:
    """An interpreter that can import Synapse, and its version, or (None, why not)."""
    candidates = [explicit or os.environ.get("PARLEY_BENCH_SYNAPSE_PYTHON") or "",
                  str(venv / "bin" / "python")]
    for python in (c for c in candidates if c):
        version = _synapse_version(python)
        if version:
            return python, version
    if explicit or not install:
        return None, "Synapse is not importable (pass --synapse-python or --install-synapse)"
    log(f"installing {requirement} into {venv} (once; a few minutes) ...")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        requirement], check=True, timeout=900, stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        return None, f"could not install matrix-synapse: {exc} {detail[-500:].decode(errors='replace')}"
    python = str(venv / "bin" / "python")
    version = _synapse_version(python)
    return (python, version) if version else (None, "matrix-synapse installed but not importable")


def _synapse_version(python: str) -> str:
    try:
        out = subprocess.run([python, "-c", "import synapse; print(synapse.__version__)"],
                             capture_output=True, timeout=60, env=clean_env())
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.decode().strip() if out.returncode == 0 else ""


def workdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"parley-bench-{prefix}-"))

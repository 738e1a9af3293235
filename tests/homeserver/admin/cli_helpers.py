"""Run ``python -m homeserver.admin`` in a subprocess against a test server's configuration."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from homeserver.config import Config

ROOT = Path(__file__).resolve().parents[3]


def write_config(config: Config, path: Path) -> Path:
    """The settings of ``config`` the admin tools need, as a TOML file."""
    lines = [
        f'server_name = "{config.server_name}"',
        "dev_mode = true",
        f'data_dir = "{config.data_dir}"',
        "[database]",
        f'url = "{config.database.url}"',
        "[registration]",
        "open = true",
        "require_email = false",
        "[security]",
        "password_scrypt_log_n = 10",
    ]
    if config.media.store == "s3":
        media = config.media
        lines += ["[media]", 'store = "s3"', f'endpoint = "{media.endpoint}"', f'bucket = "{media.bucket}"',
                  f'access_key_id = "{media.access_key_id}"', f'secret_access_key = "{media.secret_access_key}"']
    path.write_text("\n".join(lines) + "\n")
    return path


async def run_admin(config_file: Path, *args: str) -> tuple[int, Any, str]:
    """Run the admin CLI; return (exit code, parsed JSON stdout or None, stderr)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PARLEY_") or k.startswith("PARLEY_TEST_")}
    env["PYTHONPATH"] = str(ROOT)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "homeserver.admin", "--config", str(config_file), *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env, cwd=str(ROOT),
    )
    out, err = await process.communicate()
    assert process.returncode is not None
    parsed = json.loads(out) if out.strip() else None
    return process.returncode, parsed, err.decode()

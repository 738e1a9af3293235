"""The client core's state machine does not reach the network layer, and its modules stay small."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import client_tk.core

STATE_MACHINE = ("sync", "devices", "processor", "sending", "outbox", "backoff", "crypto", "keys", "events",
                 "relations")
NETWORK = ("httpx", "httpcore", "client_tk.core.transport", "client_tk.core.engine",
           "client_tk.core.outbox_driver", "client_tk.core.client")


@pytest.mark.parametrize("module", STATE_MACHINE)
def test_state_machine_modules_do_not_import_the_network(module: str) -> None:
    probe = (f"import sys, client_tk.core.{module}\n"
             f"print(' '.join(n for n in {NETWORK!r} if n in sys.modules))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         cwd=Path(client_tk.core.__file__).parents[2])
    assert out.stdout.strip() == "", f"client_tk.core.{module} pulls in {out.stdout.strip()}"


def test_no_core_module_is_over_400_lines() -> None:
    sizes = {p.name: len(p.read_text().splitlines())
             for p in Path(client_tk.core.__file__).parent.glob("*.py")}
    assert sizes and {name: n for name, n in sizes.items() if n > 400} == {}

"""A pytest plugin for the mutation run: which test executes which line, and how long each test takes.

Loaded with ``-p tests.mutation.cover`` when ``PARLEY_MUTATION_COVER`` names the
mutated files (``os.pathsep``-separated, absolute).  Coverage runs with one
dynamic context per test (its node id, set for setup, call and teardown), so
each mutant later runs only the tests that execute its line.  Durations go to
``durations-<pid>.json`` beside ``PARLEY_MUTATION_COVER_DATA`` and size each
mutant's timeout.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from typing import Any

import coverage
import pytest

_state: dict[str, Any] = {}


def _start() -> None:
    """Started on import (``-p`` loads this before the conftests import the project), so the
    module-level lines count as executed on import (context "")."""
    files = os.environ.get("PARLEY_MUTATION_COVER")
    if not files:
        return
    data_file = os.environ["PARLEY_MUTATION_COVER_DATA"]
    cov = coverage.Coverage(data_file=data_file, data_suffix=True, include=files.split(os.pathsep))
    cov.start()
    _state.update(cov=cov, data_file=data_file, durations={})


_start()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    cov = _state.get("cov")
    if cov is not None:
        cov.switch_context(item.nodeid)
    yield
    if cov is not None:
        cov.switch_context("")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    durations = _state.get("durations")
    if durations is not None:
        durations[report.nodeid] = durations.get(report.nodeid, 0.0) + report.duration


def pytest_unconfigure(config: pytest.Config) -> None:
    cov = _state.pop("cov", None)
    if cov is None:
        return
    cov.stop()
    cov.save()
    with open(os.path.join(os.path.dirname(_state["data_file"]), f"durations-{os.getpid()}.json"), "w") as out:
        json.dump(_state["durations"], out)

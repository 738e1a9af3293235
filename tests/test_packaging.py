"""The package metadata: licence, the configuration the wheel carries, pinned CI tools."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _pyproject() -> dict[str, object]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_licence_is_apache_2_in_the_repository_and_the_metadata() -> None:
    project = _pyproject()["project"]
    assert isinstance(project, dict)
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in text and "Version 2.0, January 2004" in text


def test_the_wheel_carries_every_example_configuration() -> None:
    tool = _pyproject()["tool"]
    assert isinstance(tool, dict)
    shipped = set(tool["setuptools"]["data-files"]["share/parley/conf"])
    on_disk = {f"conf/{p.name}" for p in (ROOT / "conf").glob("*.toml")}
    assert shipped == on_disk


def test_ci_tools_are_pinned_by_the_constraints_file() -> None:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"not an exact pin: {line}"
            pins[name.lower()] = version
    for tool in ("ruff", "mypy", "tox", "pytest", "pytest-asyncio", "pytest-xdist"):
        assert tool in pins, tool
    assert "PIP_CONSTRAINT = {toxinidir}/constraints.txt" in (ROOT / "tox.ini").read_text()
